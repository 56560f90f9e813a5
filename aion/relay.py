"""Relays the outbox to Kafka: oldest first, one relay at a time, each row marked published once.

``relay_once()`` (the ``aion.relay_outbox`` beat task) takes a lease in
``OutboxRelayState`` with a conditional UPDATE, so only one relay runs at a
time on PostgreSQL and SQLite alike; that is what keeps per-key order (a
second relay skipping locked rows would overtake the first). It sends
unpublished rows in id order with an idempotent kafka-python producer
(``acks=all``), waits for every acknowledgement, and marks exactly the
acknowledged rows published. On the first failure it stops, records the
error on the row, drops the producer (so no stale record is sent later) and
backs off exponentially (shared through the state row) while Kafka is down.
The next run starts again at the oldest unpublished row.

Delivery to consumers is at-least-once only if the process dies between
Kafka's acknowledgement and the database update; the envelope's stable
``event_id`` (also a record header) lets consumers drop such a duplicate.

Also exports the backlog gauges ``aion_outbox_backlog`` and
``aion_outbox_oldest_age_seconds`` (computed at scrape time).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from aion.metrics import scrape_registry
from aion.models import OutboxEvent, OutboxRelayState

logger = logging.getLogger("aion.relay")

OUTBOX_PUBLISHED = Counter("aion_outbox_published_total", "Outbox events relayed to Kafka", ["topic"])
OUTBOX_RELAY_FAILURES = Counter("aion_outbox_relay_failures_total", "Relay runs stopped by a Kafka error")

STATE_NAME = "outbox"
_producer: Any = None
_producer_lock = threading.Lock()


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def producer_config() -> dict[str, Any]:
    timeout_ms = int(settings.AION_KAFKA_TIMEOUT_SECONDS * 1000)
    return {
        "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "client_id": settings.AION_KAFKA_CLIENT_ID,
        "acks": "all",
        "enable_idempotence": True,  # the broker drops the producer's own retries; order per partition holds
        "linger_ms": 5,
        "request_timeout_ms": max(500, timeout_ms // 2),
        "max_block_ms": max(500, timeout_ms // 2),
        # Every record either lands or fails within this time, so none is left queued after a failed run.
        "delivery_timeout_ms": max(1000, timeout_ms),
        "reconnect_backoff_max_ms": 2000,
        # Building a producer bootstraps eagerly; a dead cluster must fail fast, not after 30 s.
        "bootstrap_timeout_ms": max(500, timeout_ms),
    }


def get_producer() -> Any:
    global _producer
    with _producer_lock:
        if _producer is None:
            from kafka import KafkaProducer

            _producer = KafkaProducer(**producer_config())
        return _producer


def discard_producer() -> None:
    """Closes the producer without waiting; anything still queued is dropped, never sent later."""
    global _producer
    with _producer_lock:
        producer, _producer = _producer, None
    if producer is None:
        return
    try:
        producer.close(timeout=0)
    except Exception:  # noqa: BLE001 - close(0) raises when records are pending; force the sender down
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()


def _acquire_lease(now: datetime, holder: str) -> bool:
    OutboxRelayState.objects.get_or_create(name=STATE_NAME)
    taken = (
        OutboxRelayState.objects.filter(name=STATE_NAME)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(holder=holder))
        .update(holder=holder, lease_expires_at=now + timedelta(seconds=settings.AION_OUTBOX_RELAY_LOCK_SECONDS))
    )
    return taken == 1


def _release_lease(holder: str) -> None:
    OutboxRelayState.objects.filter(name=STATE_NAME, holder=holder).update(holder="", lease_expires_at=None)


def _send_batch(rows: list[OutboxEvent]) -> tuple[list[int], OutboxEvent | None, str]:
    """Sends ROWS in order; returns (acknowledged ids, first failed row, error)."""
    producer = get_producer()
    futures = []
    try:
        for row in rows:
            envelope = row.envelope
            headers = [("event_id", str(row.event_id).encode()), ("event_type", row.event_type.encode())]
            value = json.dumps(envelope, separators=(",", ":"), default=str).encode()
            futures.append((row, producer.send(row.topic, key=row.key.encode(), value=value, headers=headers)))
        producer.flush(timeout=settings.AION_KAFKA_TIMEOUT_SECONDS * 1.5)
    except Exception as exc:  # noqa: BLE001 - any producer error means "Kafka is not taking records now"
        failed_at = rows[len(futures)] if len(futures) < len(rows) else None
        error = f"{type(exc).__name__}: {exc}"
    else:
        failed_at, error = None, ""
    acknowledged: list[int] = []
    for row, future in futures:
        if future.is_done and future.succeeded():
            # Marked even after an earlier failure: it is in Kafka, and sending it again would duplicate it.
            acknowledged.append(row.pk)
            continue
        if failed_at is None:
            failed_at = row
            exception = future.exception if future.is_done else None
            error = error or (f"{type(exception).__name__}: {exception}" if exception else "not acknowledged in time")
    return acknowledged, failed_at, error


def _iter_batches() -> Iterator[list[OutboxEvent]]:
    while True:
        batch = list(OutboxEvent.objects.filter(published_at__isnull=True).order_by("id")[: settings.AION_OUTBOX_BATCH_SIZE])
        if not batch:
            return
        yield batch


def backoff_seconds(failures: int) -> int:
    return int(min(settings.AION_OUTBOX_MAX_BACKOFF_SECONDS, 2 ** min(failures, 20)))


def relay_once(*, now: datetime | None = None, max_batches: int = 20) -> int:
    """Relays unpublished rows; returns how many were published (0 when disabled, backing off or leased elsewhere)."""
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        return 0
    now = now or timezone.now()
    state, _ = OutboxRelayState.objects.get_or_create(name=STATE_NAME)
    if state.next_attempt_at is not None and now < state.next_attempt_at:
        return 0
    holder = holder_id()
    if not _acquire_lease(now, holder):
        return 0
    published = 0
    try:
        for number, batch in enumerate(_iter_batches()):
            if number >= max_batches:
                break
            try:
                acknowledged, failed, error = _send_batch(batch)
            except Exception as exc:  # noqa: BLE001 - e.g. NoBrokersAvailable while building the producer
                acknowledged, failed, error = [], batch[0], f"{type(exc).__name__}: {exc}"
            if acknowledged:
                with transaction.atomic():
                    marked = OutboxEvent.objects.filter(pk__in=acknowledged, published_at__isnull=True).update(published_at=timezone.now())
                published += marked
                for row in batch:
                    if row.pk in acknowledged:
                        OUTBOX_PUBLISHED.labels(row.topic).inc()
            if failed is not None:
                _record_failure(failed, error, now)
                return published
        OutboxRelayState.objects.filter(name=STATE_NAME).update(
            consecutive_failures=0, next_attempt_at=None, last_error="", last_success_at=timezone.now()
        )
        return published
    finally:
        _release_lease(holder)


def _record_failure(row: OutboxEvent, error: str, now: datetime) -> None:
    OUTBOX_RELAY_FAILURES.inc()
    discard_producer()
    OutboxEvent.objects.filter(pk=row.pk).update(attempts=row.attempts + 1, last_error=error[:2000])
    state = OutboxRelayState.objects.get(name=STATE_NAME)
    failures = state.consecutive_failures + 1
    delay = backoff_seconds(failures)
    failed_at = max(now, timezone.now())  # the back-off starts when the attempt gave up, not when it began
    OutboxRelayState.objects.filter(name=STATE_NAME).update(
        consecutive_failures=failures, next_attempt_at=failed_at + timedelta(seconds=delay), last_error=error[:2000]
    )
    logger.warning(
        "outbox relay stopped: Kafka unavailable", extra={"error": error[:300], "retry_in_seconds": delay, "event_id": str(row.event_id)}
    )


class OutboxCollector:
    """Scrape-time gauges: the unpublished backlog and the age of its oldest row."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from aion.outbox import backlog

        try:
            count, age = backlog()
        except Exception:  # noqa: BLE001 - a scrape must not fail when the database is away
            return
        yield GaugeMetricFamily("aion_outbox_backlog", "Outbox events not yet relayed to Kafka", value=count)
        yield GaugeMetricFamily("aion_outbox_oldest_age_seconds", "Age of the oldest unrelayed outbox event", value=age or 0.0)


_collector_registered = False


def register_collector() -> None:
    global _collector_registered
    if not _collector_registered:
        scrape_registry.register(OutboxCollector())  # type: ignore[arg-type]
        _collector_registered = True


register_collector()
