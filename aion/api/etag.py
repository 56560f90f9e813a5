"""ETag / If-Match guards against writes from stale views (NetBox's ETagMixin idea)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aion.problems import Problem


def etag_for(data: Any) -> str:
    """A strong ETag over the JSON form of DATA (or of a version string)."""
    blob = data if isinstance(data, str) else json.dumps(data, sort_keys=True, default=str)
    return '"' + hashlib.sha256(blob.encode()).hexdigest()[:32] + '"'


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
