"""Inbound delivery ids: the first request acts, duplicates get the first response back.

With Redis (``AION_IDEMPOTENCY_REDIS_URL``, database 3 by default), the claim
is ``SET NX`` with a 24 h TTL and the finished response replaces the claim's
value. Without Redis, the ``InboundDelivery`` unique constraint on
(tenant, delivery id) is the claim. Either way a duplicate that arrives while
the first is still acting waits briefly for its response, so two racing
copies act once and answer the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

PENDING = "pending"
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05


class IdempotencyUnavailable(RuntimeError):
    """Redis is configured but does not answer (fail closed)."""


@dataclass(frozen=True)
class Claim:
    acquired: bool
    status: int | None = None  # the first response, for a duplicate
    body: Any = None
    in_progress: bool = False


def _redis_key(tenant_id: str, delivery_id: str) -> str:
    digest = hashlib.sha256(f"{tenant_id}\x00{delivery_id}".encode()).hexdigest()
    return f"{key_prefix()}{digest}"


def key_prefix() -> str:
    return str(settings.AION_HOOKS_IDEMPOTENCY_PREFIX)


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(
        settings.AION_IDEMPOTENCY_REDIS_URL,
        socket_connect_timeout=settings.AION_REDIS_TIMEOUT_SECONDS,
        socket_timeout=settings.AION_REDIS_TIMEOUT_SECONDS,
    )


def uses_redis() -> bool:
    return bool(settings.AION_IDEMPOTENCY_REDIS_URL)


def claim(tenant_id: str, delivery_id: str, *, wait: float = WAIT_SECONDS) -> Claim:
    if uses_redis():
        return _claim_redis(tenant_id, delivery_id, wait)
    return _claim_db(tenant_id, delivery_id, wait)


def complete(tenant_id: str, delivery_id: str, status: int, body: Any, *, source_name: str = "") -> None:
    """Store the response the first request gave (also kept in the database as the inbound log)."""
    from hooks.models import InboundDelivery

    ttl = settings.AION_IDEMPOTENCY_TTL_SECONDS
    if uses_redis():
        try:
            _redis().set(_redis_key(tenant_id, delivery_id), json.dumps({"status": status, "body": body}), ex=ttl)
        except Exception as exc:
            raise IdempotencyUnavailable(str(exc)) from exc
    InboundDelivery.objects.update_or_create(
        tenant_id=tenant_id,
        delivery_id=delivery_id,
        defaults={
            "source_name": source_name,
            "completed": True,
            "response_status": status,
            "response_body": body,
            "expires_at": timezone.now() + timedelta(seconds=ttl),
        },
    )


def release(tenant_id: str, delivery_id: str) -> None:
    """Forget an unfinished claim (the first request crashed), so a retry may act."""
    from hooks.models import InboundDelivery

    if uses_redis():
        try:
            _redis().delete(_redis_key(tenant_id, delivery_id))
        except Exception:  # noqa: BLE001 - the TTL cleans up
            logging.getLogger("hooks").warning("could not release idempotency claim of %s", delivery_id)
    InboundDelivery.objects.filter(tenant_id=tenant_id, delivery_id=delivery_id, completed=False).delete()


def _claim_redis(tenant_id: str, delivery_id: str, wait: float) -> Claim:
    key = _redis_key(tenant_id, delivery_id)
    try:
        client = _redis()
        if client.set(key, PENDING, nx=True, ex=settings.AION_IDEMPOTENCY_TTL_SECONDS):
            return Claim(acquired=True)
        deadline = time.monotonic() + wait
        while True:
            value = client.get(key)
            if value is None:  # expired or released meanwhile: try to take it
                if client.set(key, PENDING, nx=True, ex=settings.AION_IDEMPOTENCY_TTL_SECONDS):
                    return Claim(acquired=True)
            elif value.decode() != PENDING:
                stored = json.loads(value)
                return Claim(acquired=False, status=int(stored["status"]), body=stored["body"])
            if time.monotonic() >= deadline:
                return Claim(acquired=False, in_progress=True)
            time.sleep(POLL_SECONDS)
    except IdempotencyUnavailable:
        raise
    except Exception as exc:
        raise IdempotencyUnavailable(str(exc)) from exc


def _claim_db(tenant_id: str, delivery_id: str, wait: float) -> Claim:
    from hooks.models import InboundDelivery

    now = timezone.now()
    ttl = timedelta(seconds=settings.AION_IDEMPOTENCY_TTL_SECONDS)
    # An expired record no longer protects anything (the signature tolerance is far shorter).
    InboundDelivery.objects.filter(tenant_id=tenant_id, delivery_id=delivery_id, expires_at__lte=now).delete()
    try:
        with transaction.atomic():
            InboundDelivery.objects.create(tenant_id=tenant_id, delivery_id=delivery_id, expires_at=now + ttl)
        return Claim(acquired=True)
    except IntegrityError:
        pass
    deadline = time.monotonic() + wait
    while True:
        row = InboundDelivery.objects.filter(tenant_id=tenant_id, delivery_id=delivery_id).first()
        if row is None and time.monotonic() < deadline:
            return _claim_db(tenant_id, delivery_id, max(0.0, deadline - time.monotonic()))
        if row is not None and row.completed:
            return Claim(acquired=False, status=row.response_status, body=row.response_body)
        if time.monotonic() >= deadline:
            return Claim(acquired=False, in_progress=True)
        time.sleep(POLL_SECONDS)
