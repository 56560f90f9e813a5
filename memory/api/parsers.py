"""Body parsers of the ingest route: JSON read in one piece, and raw chunk bytes (``application/octet-stream``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.utils import json

from aion.problems import Problem

OCTET_STREAM = "application/octet-stream"


class IngestJSONParser(JSONParser):
    """DRF's JSONParser without its incremental codec reader, which costs 2-3x on a 5.6 MB base64 chunk."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            text = stream.read().decode("utf-8")  # RFC 8259: JSON exchanged between systems is UTF-8
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None


class ChunkBytesParser(BaseParser):
    """The chunk itself as the body; never reads more than AION_MEMORY_MAX_CHUNK_BYTES + 1 bytes."""

    media_type = OCTET_STREAM

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:  # bytes (DRF passes any parsed value on)
        limit = settings.AION_MEMORY_MAX_CHUNK_BYTES
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise Problem(413, f"The chunk is over AION_MEMORY_MAX_CHUNK_BYTES ({limit} bytes).", slug="chunk-too-large")
        return bytes(data)
