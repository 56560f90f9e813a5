"""Test fixtures: mongo (filled in by the issue that needs it)."""
