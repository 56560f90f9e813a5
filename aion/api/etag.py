"""ETag / If-Match guards against writes from stale views (NetBox's ETagMixin idea)."""

from __future__ import annotations

from typing import Any

from aion.etags import etag_for as etag_for  # the value itself is pure: aion.etags (services compare it too)
from aion.problems import Problem


def check_if_match(request: Any, current_etag: str) -> None:
    """412 when the client sent If-Match for a representation that is no longer current."""
    header = request.META.get("HTTP_IF_MATCH")
    if not header:
        return
    candidates = [value.strip() for value in header.split(",")]
    if "*" in candidates:
        return
    # Accept weak forms too (proxies may add W/).
    normalized = {c[2:] if c.startswith("W/") else c for c in candidates}
    if current_etag not in normalized:
        raise Problem(412, "The resource changed since you read it; reload and try again.", slug="stale-etag", current_etag=current_etag)
