"""``Idempotency-Key`` for ``POST /v1/invoke``: a repeated key returns the first result without running again.

Bounded memory: at most ``max_entries`` results (least recently used dropped first), each kept at most
``ttl_seconds``, and each result's body at most ``MAX_STORED_BYTES`` (a larger one is served, not kept).
Concurrent requests with one key run once: the first claims the key, the others wait for its result.
A key reused with a different body is a conflict. Answers of 5xx are not kept: the caller's retry runs.
The cache is per process; the router's task id is the key, so a re-delivered task is not run twice by
the replica that ran it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from aion import errors

MAX_STORED_BYTES = 4 * 1024 * 1024
MAX_KEY_CHARS = 255


@dataclass
class Entry:
    fingerprint: str
    expires: float
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    body: bytes = b""
    kept: bool = False


class ReplayCache:
    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 86_400.0) -> None:
        self.max_entries = max(1, max_entries)
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, key: str, body: bytes, *, wait_seconds: float) -> tuple[Entry, bool]:
        """(entry, True) when this request must run and ``finish`` it; (entry, False) with the first result to replay."""
        if len(key) > MAX_KEY_CHARS:
            raise errors.InvalidInput(f"Idempotency-Key is longer than {MAX_KEY_CHARS} characters")
        fingerprint = self.fingerprint(body)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.done.is_set() and (entry.expires <= now or not entry.kept):
                del self._entries[key]
                entry = None
            if entry is None:
                entry = Entry(fingerprint=fingerprint, expires=now + self.ttl_seconds)
                self._entries[key] = entry
                self._trim()
                return entry, True
            self._entries.move_to_end(key)
        if entry.fingerprint != fingerprint:
            raise errors.Conflict("this Idempotency-Key was used with a different request body", code="idempotency-key-reused")
        if not entry.done.wait(wait_seconds):
            raise errors.Conflict("a request with this Idempotency-Key is still running; retry later", code="idempotency-in-flight")
        if not entry.kept:  # the first attempt failed (5xx): this one runs
            return self.claim(key, body, wait_seconds=wait_seconds)
        return entry, False

    def finish(self, key: str, entry: Entry, status: int, body: bytes) -> None:
        entry.status, entry.body = status, body
        entry.kept = status < 500 and len(body) <= MAX_STORED_BYTES
        with self._lock:
            if not entry.kept and self._entries.get(key) is entry:
                del self._entries[key]
        entry.done.set()

    def _trim(self) -> None:
        while len(self._entries) > self.max_entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if not oldest.done.is_set() and len(self._entries) <= 2 * self.max_entries:
                break  # never evict a run in flight while there is room to spare; the bound is 2x then
            del self._entries[oldest_key]
