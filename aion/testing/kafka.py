"""Test fixtures: kafka (filled in by the issue that needs it)."""
