"""Models of the router app."""
