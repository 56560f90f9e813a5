"""The hooks REST API (under /v1/)."""
