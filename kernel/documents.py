"""Configuration documents as values: canonical JSON, the hashes over it and JSON equality.

Pure functions (no database): the services, the presenters and the module hosts' code share them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def document_sha256(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def content_hash_for(scope: str, target: str, changes: list[dict[str, Any]]) -> str:
    """What an approval is bound to: the scope, target and exact changes."""
    return hashlib.sha256(canonical_json({"scope": scope, "target": target, "changes": changes}).encode()).hexdigest()


def same_value(a: Any, b: Any) -> bool:
    """JSON equality that keeps true apart from 1 and 1 apart from "1"."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
