"""Models of the modules app."""
