"""A YAML request parser: ``POST /v1/modules`` accepts the manifest as ``application/yaml``."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from modules import manifest as manifests


class YAMLParser(BaseParser):
    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return {"__yaml_manifest__": manifests.parse_yaml(raw.decode("utf-8"))}
        except UnicodeDecodeError as exc:
            raise ParseError("The YAML body is not UTF-8.") from exc
        except manifests.ManifestInvalid as exc:
            raise ParseError(exc.errors["manifest"][0]) from exc


class XYAMLParser(YAMLParser):
    media_type = "application/x-yaml"


class TextYAMLParser(YAMLParser):
    media_type = "text/yaml"
