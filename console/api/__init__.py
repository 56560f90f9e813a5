"""The console REST API (under /v1/)."""
