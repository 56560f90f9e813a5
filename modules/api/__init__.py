"""The modules REST API (under /v1/)."""
