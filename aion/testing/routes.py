"""Walks the URLconf: every route, its view, and the role it declares (used by route tests)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass
class Route:
    path: str  # a concrete sample path (converters filled in)
    pattern: str
    name: str
    callback: Any

    @property
    def view_class(self) -> Any:
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)

    @property
    def is_drf(self) -> bool:
        return hasattr(self.callback, "cls")

    def declared_roles(self) -> set[str]:
        found: set[str] = set()
        for owner in (self.callback, self.view_class):
            if owner is None:
                continue
            if getattr(owner, "required_role", None):
                found.add(str(owner.required_role))
            found.update(str(v) for v in (getattr(owner, "required_roles", None) or {}).values())
        return found


_SAMPLES = {"int": "1", "uuid": "00000000-0000-4000-8000-000000000000", "slug": "sample", "str": "sample", "path": "sample"}


def _sample(pattern: str) -> str:
    pattern = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: _SAMPLES.get(m.group(1) or "str", "sample"), pattern)
    # regex routes (admin, DRF format suffixes)
    pattern = pattern.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\.", ".")
    pattern = re.sub(r"\(\?P<\w+>[^)]*\)", "1", pattern)
    return "/" + pattern


def iter_routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[Route]:
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from iter_routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            raw = prefix + str(entry.pattern)
            yield Route(path=_sample(raw), pattern=raw, name=entry.name or "", callback=entry.callback)
