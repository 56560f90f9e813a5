"""Removes secrets from anything that is logged, audited or stored as evidence."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY_PATTERN = re.compile(
    r"(secret|password|passwd|token|api[-_]?key|authorization|signature|key_hash|private|credential|cookie)", re.I
)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """A copy of VALUE with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY_PATTERN.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
