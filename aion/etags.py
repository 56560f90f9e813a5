"""ETag values: a strong validator over some data or a version string.

Pure (a leaf: nothing HTTP), so a service can compare the caller's If-Match with what it holds;
the HTTP guard on a request is ``aion.api.etag.check_if_match``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def etag_for(data: Any) -> str:
    """A strong ETag over the JSON form of DATA (or of a version string)."""
    blob = data if isinstance(data, str) else json.dumps(data, sort_keys=True, default=str)
    return '"' + hashlib.sha256(blob.encode()).hexdigest()[:32] + '"'
