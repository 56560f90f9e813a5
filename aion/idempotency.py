"""``Idempotency-Key`` for every unsafe API request, applied by one middleware to every DRF view.

The first response (status, headers, body) is stored for
``AION_IDEMPOTENCY_TTL_SECONDS`` (24 h) under a key made of the tenant, the
credential and the client's key, on Redis database 3 by default
(``AION_IDEMPOTENCY_REDIS_URL``). A replay answers from the store with
``Idempotent-Replay: true``; the same key with a different request is a 422;
the same key while the first request still runs is a 409. If the store is
down, requests that carry the header fail closed with 503. Without Redis an
in-process store is used (single process only).

5xx, 429, 401/403, 408/409/412/423/425 answers are not stored: the lock is
released so the client may retry with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import SAFE_METHODS

from aion.problems import problem_response

logger = logging.getLogger("aion.idempotency")

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replay"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Headers worth replaying (hop-by-hop, cookies and per-request ones are not).
_REPLAYED_HEADERS = {"content-type", "location", "etag", "last-modified", "content-language", "cache-control"}
_IN_FLIGHT = "in-flight"


# Answers that depend on the moment, not on the request (auth, locks, preconditions, limits, server errors)
# are not stored: the key is released and a retry runs again.
_NOT_STORED = {401, 403, 408, 409, 412, 423, 425, 429}


def storable(status: int) -> bool:
    return status < 500 and status not in _NOT_STORED


class StoreUnavailable(RuntimeError):
    pass


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=settings.AION_REDIS_TIMEOUT_SECONDS, socket_timeout=settings.AION_REDIS_TIMEOUT_SECONDS
        )

    def _call(self, fn: Callable[[], Any]) -> Any:
        import redis

        try:
            return fn()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def claim(self, key: str, value: str, ttl: int) -> str | None:
        """Stores VALUE if KEY is free (returns None); else returns what is there."""

        def run() -> str | None:
            if self.client.set(key, value, nx=True, ex=ttl):
                return None
            current: Any = self.client.get(key)
            if current is None:
                return None
            return current.decode() if isinstance(current, bytes) else str(current)

        result: str | None = self._call(run)
        return result

    def put(self, key: str, value: str, ttl: int) -> None:
        self._call(lambda: self.client.set(key, value, ex=ttl))

    def delete(self, key: str) -> None:
        self._call(lambda: self.client.delete(key))


class InProcessStore:
    """The embedded default: a dict with expiry times (single process only)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, tuple[float, str]] = {}

    def _live(self, key: str) -> str | None:
        item = self.items.get(key)
        if item is None or item[0] < time.monotonic():
            self.items.pop(key, None)
            return None
        return item[1]

    def claim(self, key: str, value: str, ttl: int) -> str | None:
        with self.lock:
            current = self._live(key)
            if current is not None:
                return current
            self.items[key] = (time.monotonic() + ttl, value)
            return None

    def put(self, key: str, value: str, ttl: int) -> None:
        with self.lock:
            self.items[key] = (time.monotonic() + ttl, value)

    def delete(self, key: str) -> None:
        with self.lock:
            self.items.pop(key, None)


_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def store() -> RedisStore | InProcessStore:
    url = settings.AION_IDEMPOTENCY_REDIS_URL or ""
    with _stores_lock:
        if url not in _stores:
            _stores[url] = RedisStore(url) if url else InProcessStore()
        return _stores[url]  # type: ignore[no-any-return]


def _view_class(view_func: Any) -> Any:
    return getattr(view_func, "cls", None)


def _resolve_principal(request: HttpRequest, view_class: Any) -> Any:
    """Runs the view's own DRF authenticators; None when the request is not authenticated."""
    from rest_framework.request import Request

    authenticators = [auth() for auth in getattr(view_class, "authentication_classes", [])]
    drf_request = Request(request, authenticators=authenticators)
    request.aion_preauthenticating = True  # type: ignore[attr-defined]
    try:
        principal = drf_request.user
    except Exception:  # noqa: BLE001 - the view itself reports auth failures (401/403)
        return None
    finally:
        request.aion_preauthenticating = False  # type: ignore[attr-defined]
    if principal is None or not getattr(principal, "is_authenticated", False):
        return None
    return principal


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.get_full_path()}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def store_key(tenant_id: str, credential: str, client_key: str) -> str:
    # Hashed so no client-chosen bytes (or credential names) land in Redis key names.
    material = json.dumps([tenant_id, credential, client_key]).encode()
    return f"{settings.AION_IDEMPOTENCY_KEY_PREFIX}:{tenant_id}:{hashlib.sha256(material).hexdigest()}"


def _serialize(response: HttpResponse, request_fingerprint: str) -> str:
    headers = {name: value for name, value in response.items() if name.lower() in _REPLAYED_HEADERS}
    return json.dumps(
        {
            "state": "done",
            "fingerprint": request_fingerprint,
            "status": response.status_code,
            "headers": headers,
            "body": base64.b64encode(response.content).decode(),
        }
    )


def _replay(entry: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(base64.b64decode(entry["body"]), status=int(entry["status"]))
    for name, value in entry.get("headers", {}).items():
        response[name] = value
    response[REPLAY_HEADER] = "true"
    return response


def _unavailable() -> HttpResponse:
    return problem_response(
        503,
        "The idempotency store is unavailable, so requests carrying Idempotency-Key are refused (fail closed). Retry shortly.",
        slug="idempotency-store-unavailable",
        headers={"Retry-After": "5"},
    )


class IdempotencyMiddleware:
    """Claims the key before the view runs, stores the response after, replays on repeats."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        claim: tuple[str, str] | None = getattr(request, "aion_idempotency_claim", None)
        if claim is None:
            return response
        key, request_fingerprint = claim
        try:
            if not storable(response.status_code) or getattr(response, "streaming", False):
                store().delete(key)  # not a final answer: let the client retry with the same key
            else:
                store().put(key, _serialize(response, request_fingerprint), settings.AION_IDEMPOTENCY_TTL_SECONDS)
        except StoreUnavailable as exc:
            # The change already happened; the answer still goes back, but a replay may not find it.
            logger.error("idempotency store lost a response", extra={"error": str(exc)})
        return response

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> HttpResponse | None:
        client_key = request.headers.get(HEADER)
        view_class = _view_class(view_func)
        if client_key is None or view_class is None or request.method in SAFE_METHODS:
            return None
        if not _VALID_KEY.match(client_key):
            return problem_response(
                400, "Idempotency-Key must be 1-255 printable ASCII characters.", slug="validation-error", errors={HEADER: ["invalid"]}
            )
        principal = _resolve_principal(request, view_class)
        if principal is None:
            return None  # the view answers 401/403 itself; nothing to protect
        try:
            request_fingerprint = fingerprint(request)
        except Exception:  # noqa: BLE001 - an unreadable body is the view's problem to report
            return None
        key = store_key(principal.tenant_id, getattr(principal, "subject", str(principal)), client_key)
        marker = json.dumps({"state": _IN_FLIGHT, "fingerprint": request_fingerprint})
        try:
            existing = store().claim(key, marker, settings.AION_IDEMPOTENCY_LOCK_SECONDS)
        except StoreUnavailable as exc:
            logger.warning("idempotency store unavailable; failing closed", extra={"error": str(exc)})
            return _unavailable()
        if existing is None:
            request.aion_idempotency_claim = (key, request_fingerprint)  # type: ignore[attr-defined]
            return None
        entry = json.loads(existing)
        if entry.get("fingerprint") != request_fingerprint:
            return problem_response(
                422,
                "This Idempotency-Key was already used with a different request.",
                slug="idempotency-key-reused",
            )
        if entry.get("state") == _IN_FLIGHT:
            return problem_response(
                409,
                "A request with this Idempotency-Key is still being processed.",
                slug="idempotency-in-flight",
                headers={"Retry-After": "1"},
            )
        return _replay(entry)
