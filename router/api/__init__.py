"""The router REST API (under /v1/)."""
