"""The state file: what the agent last fetched, applied and reported, so a restart resumes where it stopped.

Per scope: the ETag (the next fetch is a conditional GET: an unchanged revision is a 304), the revision, its
sha256 and document, and the baseline (each key's value before the agent first changed it, restored when the key
leaves the document). Also the last accepted report (a report is sent again only when it differs, or as a
heartbeat) and the last guardrail policy fetched. Written atomically (a temporary file renamed over it).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


class AgentState:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"scopes": {}, "last_report": None, "policy": None}
        if path is not None and path.exists():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError):
                loaded = None  # a torn or foreign file: start afresh (values in place are still not rewritten)
            if isinstance(loaded, dict) and isinstance(loaded.get("scopes"), dict):
                self.data.update(loaded)

    def scope(self, name: str) -> dict[str, Any]:
        entry = self.data["scopes"].setdefault(name, {})
        entry.setdefault("baseline", {})
        return entry

    def save(self) -> None:
        self.data["saved_at"] = time.time()
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".agent-state-", dir=self.path.parent)
        with os.fdopen(handle, "w") as out:
            json.dump(self.data, out, sort_keys=True, indent=1)
        os.replace(temporary, self.path)


def last_cycle_age(path: Path) -> float | None:
    """Seconds since the state file was last saved (the liveness probe's question), None when it cannot tell."""
    try:
        saved = float(json.loads(path.read_text())["saved_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return max(0.0, time.time() - saved)
