"""Relays the outbox to Kafka: oldest first, one relay at a time, per-key order kept, each row marked published once.

``relay_once()`` (the ``aion.relay_outbox`` beat task) takes a lease in
``OutboxRelayState`` with a conditional UPDATE, so only one relay runs at a
time on PostgreSQL and SQLite alike (a second relay skipping locked rows would
overtake the first), and renews it for every batch.

Per-key order. Kafka keeps order per partition, and a key always maps to the
same partition of its topic, so the ordering key is ``(topic, key)``. A batch
is sent in *waves*: each wave holds at most one row per ordering key (the
oldest unsent one), is flushed, and every answer is read before the next wave
goes out. So a row is never handed to Kafka while an earlier row of its key is
unacknowledged, and when a row fails no later row of its key is sent in that
run; the next run starts again at the oldest unpublished row. Rows of other
keys that Kafka acknowledged are marked published (sending them again would
duplicate them). Many distinct keys go out in one wave; a hot key costs one
round trip per row.

Failures. An error about Kafka being unreachable (timeouts, connection and
metadata errors, an unanswered record) stops the run: the producer is dropped
so nothing queued is sent later, and the relay backs off exponentially
(shared through the state row). An error about one record (too large, invalid
or forbidden topic) only holds back that row's key: the other keys keep
flowing and there is no back-off; the row keeps its ``attempts`` and
``last_error`` (``manage.py outbox_status`` lists it) until an operator fixes
the cause, and it is retried every run. Nothing is ever dropped.

Delivery to consumers is at-least-once only if Kafka wrote a record whose
answer was lost (or the process died between the acknowledgement and the
database update); the row is then sent again, and the envelope's stable
``event_id`` (also a record header) lets consumers drop the second copy. The
order of first copies per key still holds.

Also exports the backlog gauges ``aion_outbox_backlog`` and
``aion_outbox_oldest_age_seconds`` (computed at scrape time).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from aion.metrics import register_scrape_collector
from aion.models import OutboxEvent, OutboxRelayState

logger = logging.getLogger("aion.relay")

OUTBOX_PUBLISHED = Counter("aion_outbox_published_total", "Outbox events relayed to Kafka", ["topic"])
OUTBOX_RELAY_FAILURES = Counter("aion_outbox_relay_failures_total", "Relay runs stopped by a Kafka error")
OUTBOX_ROW_FAILURES = Counter("aion_outbox_row_failures_total", "Outbox rows Kafka refused (their key waits)", ["topic"])

STATE_NAME = "outbox"
_producer: Any = None
_producer_config: dict[str, Any] | None = None
_producer_lock = threading.Lock()

# Errors about one record rather than about Kafka being reachable: only that row's key waits.
_ROW_ERROR_NAMES = (
    "MessageSizeTooLargeError",
    "RecordListTooLargeError",
    "InvalidTopicError",
    "TopicAuthorizationFailedError",
    "InvalidRecordError",
    "CorruptRecordError",
)


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
        "max_request_size": settings.AION_KAFKA_MAX_REQUEST_BYTES,
        "request_timeout_ms": max(500, timeout_ms // 2),
        "max_block_ms": max(500, timeout_ms // 2),
        # Every record either lands or fails within this time, so none is left queued after a failed run.
        "delivery_timeout_ms": max(1000, timeout_ms),
        "reconnect_backoff_max_ms": 2000,
        # Building a producer bootstraps eagerly; a dead cluster must fail fast, not after 30 s.
        "bootstrap_timeout_ms": max(500, timeout_ms),
    }


def get_producer() -> Any:
    """The shared producer, rebuilt when the settings it was built from changed."""
    global _producer, _producer_config
    config = producer_config()
    if _producer is not None and config != _producer_config:
        discard_producer()
    with _producer_lock:
        if _producer is None:
            from kafka import KafkaProducer

            _producer = KafkaProducer(**config)
            _producer_config = config
        return _producer


def discard_producer() -> None:
    """Closes the producer without waiting; anything still queued is dropped, never sent later."""
    global _producer, _producer_config
    with _producer_lock:
        producer, _producer, _producer_config = _producer, None, None
    if producer is None:
        return
    try:
        producer.close(timeout=0)
    except Exception:  # noqa: BLE001 - close(0) raises when records are pending; force the sender down
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()


def _acquire_lease(now: datetime, holder: str) -> bool:
    """Takes (or, for the current holder, renews) the relay lease."""
    OutboxRelayState.objects.get_or_create(name=STATE_NAME)
    taken = (
        OutboxRelayState.objects.filter(name=STATE_NAME)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(holder=holder))
        .update(holder=holder, lease_expires_at=now + timedelta(seconds=settings.AION_OUTBOX_RELAY_LOCK_SECONDS))
    )
    return taken == 1


def _release_lease(holder: str) -> None:
    OutboxRelayState.objects.filter(name=STATE_NAME, holder=holder).update(holder="", lease_expires_at=None)


def ordering_key(row: OutboxEvent) -> tuple[str, str]:
    """Rows sharing this reach Kafka in outbox order (one key is one partition of one topic)."""
    return row.topic, row.key


def is_row_error(exc: BaseException | None) -> bool:
    """True when Kafka refused this record itself (retrying later cannot help until someone fixes the cause)."""
    import kafka.errors

    kinds = tuple(getattr(kafka.errors, name) for name in _ROW_ERROR_NAMES if hasattr(kafka.errors, name))
    return isinstance(exc, kinds)


def describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}" if exc is not None else "not acknowledged in time"


@dataclass
class WaveResult:
    acknowledged: list[OutboxEvent] = field(default_factory=list)
    failed: list[tuple[OutboxEvent, str]] = field(default_factory=list)
    unavailable: str = ""  # set when Kafka looks unreachable: the run stops


def _send_wave(producer: Any, wave: list[OutboxEvent]) -> WaveResult:
    """Sends WAVE (at most one row per ordering key) and reads every answer before returning."""
    result = WaveResult()
    futures = []
    for row in wave:
        headers = [("event_id", str(row.event_id).encode()), ("event_type", row.event_type.encode())]
        value = json.dumps(row.envelope, separators=(",", ":"), default=str).encode()
        try:
            futures.append((row, producer.send(row.topic, key=row.key.encode(), value=value, headers=headers)))
        except Exception as exc:  # noqa: BLE001 - any producer error is either about this row or about Kafka
            result.failed.append((row, describe(exc)))
            if not is_row_error(exc):
                result.unavailable = describe(exc)
                break  # the rest of the wave stays unsent and unpublished
    try:
        producer.flush(timeout=settings.AION_KAFKA_TIMEOUT_SECONDS * 1.5)
    except Exception as exc:  # noqa: BLE001 - e.g. KafkaTimeoutError; the futures below tell which rows landed
        result.unavailable = result.unavailable or describe(exc)
    for row, future in futures:
        if future.is_done and future.succeeded():
            result.acknowledged.append(row)
            continue
        exception = future.exception if future.is_done else None
        result.failed.append((row, describe(exception)))
        if not is_row_error(exception):
            # Includes an unanswered record: it may still land, so nothing more is sent until the producer is gone.
            result.unavailable = result.unavailable or describe(exception)
    return result


def _mark_published(rows: list[OutboxEvent]) -> int:
    if not rows:
        return 0
    marked = OutboxEvent.objects.filter(pk__in=[row.pk for row in rows], published_at__isnull=True).update(published_at=timezone.now())
    for row in rows:
        OUTBOX_PUBLISHED.labels(row.topic).inc()
    return int(marked)


@dataclass
class RelayRun:
    published: int = 0
    held_back: set[tuple[str, str]] = field(default_factory=set)  # keys with a failed row: nothing later is sent
    failed: list[tuple[OutboxEvent, str]] = field(default_factory=list)
    unavailable: str = ""


def _relay_batch(producer: Any, batch: list[OutboxEvent], run: RelayRun) -> None:
    """Sends BATCH (id order) in waves of one row per ordering key; updates RUN."""
    queues: dict[tuple[str, str], deque[OutboxEvent]] = {}
    for row in batch:
        key = ordering_key(row)
        if key not in run.held_back:
            queues.setdefault(key, deque()).append(row)
    while queues:
        wave = sorted((queue[0] for queue in queues.values()), key=lambda row: row.pk)
        result = _send_wave(producer, wave)
        run.published += _mark_published(result.acknowledged)
        for row in result.acknowledged:
            queue = queues[ordering_key(row)]
            queue.popleft()
            if not queue:
                del queues[ordering_key(row)]
        for row, _error in result.failed:
            run.held_back.add(ordering_key(row))
            queues.pop(ordering_key(row), None)
        run.failed += result.failed
        if result.unavailable:
            run.unavailable = result.unavailable
            return


def backoff_seconds(failures: int) -> int:
    return int(min(settings.AION_OUTBOX_MAX_BACKOFF_SECONDS, 2 ** min(failures, 20)))


def relay_once(*, now: datetime | None = None, max_batches: int = 20, producer: Any = None) -> int:
    """Relays unpublished rows; returns how many were published (0 when disabled, backing off or leased elsewhere).

    PRODUCER replaces the shared kafka-python producer (tests); it is never closed here.
    """
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        return 0
    now = now or timezone.now()
    state, _ = OutboxRelayState.objects.get_or_create(name=STATE_NAME)
    if state.next_attempt_at is not None and now < state.next_attempt_at:
        return 0
    holder = holder_id()
    if not _acquire_lease(now, holder):
        return 0
    run = RelayRun()
    try:
        after_id = 0
        for _ in range(max_batches):
            batch = list(
                OutboxEvent.objects.filter(published_at__isnull=True, id__gt=after_id).order_by("id")[: settings.AION_OUTBOX_BATCH_SIZE]
            )
            if not batch:
                break
            after_id = batch[-1].pk
            if not _acquire_lease(max(now, timezone.now()), holder):
                break  # the lease ran out and another relay took over: stop sending
            try:
                active = producer if producer is not None else get_producer()
            except Exception as exc:  # noqa: BLE001 - e.g. NoBrokersAvailable while building the producer
                run.failed.append((batch[0], describe(exc)))
                run.unavailable = describe(exc)
                break
            _relay_batch(active, batch, run)
            if run.unavailable:
                break
        _record_run(run, now, own_producer=producer is None)
        return run.published
    finally:
        _release_lease(holder)


def _record_run(run: RelayRun, now: datetime, *, own_producer: bool) -> None:
    """Keeps each failed row's error, and backs off only when Kafka looked unreachable."""
    for row, error in run.failed:
        OUTBOX_ROW_FAILURES.labels(row.topic).inc()
        OutboxEvent.objects.filter(pk=row.pk).update(attempts=row.attempts + 1, last_error=error[:2000])
    if not run.unavailable:
        first_error = f"event {run.failed[0][0].event_id}: {run.failed[0][1]}" if run.failed else ""
        OutboxRelayState.objects.filter(name=STATE_NAME).update(
            consecutive_failures=0, next_attempt_at=None, last_error=first_error[:2000], last_success_at=timezone.now()
        )
        for row, error in run.failed:
            logger.warning(
                "outbox row refused by Kafka; its key waits",
                extra={"error": error[:300], "event_id": str(row.event_id), "topic": row.topic},
            )
        return
    OUTBOX_RELAY_FAILURES.inc()
    if own_producer:
        discard_producer()
    state = OutboxRelayState.objects.get(name=STATE_NAME)
    failures = state.consecutive_failures + 1
    delay = backoff_seconds(failures)
    failed_at = max(now, timezone.now())  # the back-off starts when the attempt gave up, not when it began
    OutboxRelayState.objects.filter(name=STATE_NAME).update(
        consecutive_failures=failures, next_attempt_at=failed_at + timedelta(seconds=delay), last_error=run.unavailable[:2000]
    )
    logger.warning("outbox relay stopped: Kafka unavailable", extra={"error": run.unavailable[:300], "retry_in_seconds": delay})


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


def register_collector() -> None:
    register_scrape_collector(OutboxCollector())


register_collector()
