"""Template filters of the kernel Console pages."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def jsonvalue(value: Any) -> str:
    """A configuration value as JSON (``1024``, ``true``, ``"deny"``), or "(absent)" for a missing key."""
    if value is None:
        return "(absent)"
    return json.dumps(value)


@register.filter
def short_id(value: Any) -> str:
    return str(value)[:8]
