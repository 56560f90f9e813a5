"""The memory REST API (under /v1/)."""
