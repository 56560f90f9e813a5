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

    def served_methods(self) -> set[str]:
        """The HTTP methods (lower case) the route's view handles; any other method is a 405."""
        actions = getattr(self.callback, "actions", None)
        if actions:  # a DRF ViewSet route: only the methods its router mapped
            return {method for method in actions if method != "options"}
        view = self.view_class
        if view is None:
            return set()
        return {m for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m)}


# One sample value per path converter (aion.api.filters registers ``id``). A converter without one fails the walk:
# a sample that does not resolve is a 404 from the URL resolver, before the view (and its auth) ever runs.
_SAMPLES = {
    "int": "1",
    "id": "1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "slug": "sample",
    "str": "sample",
    "path": "sample",
}


def _converter_sample(match: re.Match[str]) -> str:
    converter = match.group(1) or "str"
    if converter not in _SAMPLES:
        raise KeyError(f"aion.testing.routes has no sample value for the path converter {converter!r}: add one to _SAMPLES")
    return _SAMPLES[converter]


def _sample(pattern: str) -> str:
    pattern = re.sub(r"<(?:(\w+):)?(\w+)>", _converter_sample, pattern)
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
