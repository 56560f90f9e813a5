"""Test fixtures: http (filled in by the issue that needs it)."""
