"""Models of the kernel app."""
