"""Test fixtures: s3 (filled in by the issue that needs it)."""
