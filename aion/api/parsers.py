"""The API's JSON body parser: strict JSON, decoded in one piece, nesting bounded.

DRF's stock ``JSONParser`` catches only ``ValueError``, so a body of 100,000 nested arrays reached
the view as a ``RecursionError`` (a 500). Here every JSON body is decoded by msgspec (bytes in one
piece, UTF-8 checked, NaN/Infinity refused like DRF's strict mode) and refused with a 400 problem
when it is malformed or nested deeper than ``AION_JSON_MAX_DEPTH`` (default 64) arrays/objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

_DECODER = msgspec.json.Decoder()


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether VALUE nests more than LIMIT arrays/objects (iterative: a deep value cannot recurse here)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decode_json_body(body: bytes) -> Any:
    """The decoded body, or ParseError (400 ``malformed-request``) naming why."""
    limit = settings.AION_JSON_MAX_DEPTH
    try:
        value = _DECODER.decode(body)
    except RecursionError:
        raise ParseError(f"JSON parse error - nested deeper than AION_JSON_MAX_DEPTH ({limit})") from None
    except (msgspec.DecodeError, ValueError) as exc:  # malformed; numbers out of range; UnicodeDecodeError
        raise ParseError(f"JSON parse error - {exc}") from None
    if nesting_depth_exceeds(value, limit):
        raise ParseError(f"JSON parse error - nested deeper than AION_JSON_MAX_DEPTH ({limit})")
    return value


class JSONParser(parsers.JSONParser):
    """REST_FRAMEWORK's default parser (see the module docstring)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        return decode_json_body(stream.read() if stream is not None else b"")
