"""The kernel REST API (under /v1/)."""
