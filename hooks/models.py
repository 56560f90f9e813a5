"""Models of the hooks app."""
