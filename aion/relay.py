"""Relays the outbox to Kafka: oldest first, one relay at a time, per-key order kept, each row marked published once.

``relay_once()`` (the ``aion.relay_outbox`` beat task; ``relay()`` also says why nothing was sent) takes a lease in
``OutboxRelayState`` with a conditional UPDATE, so only one relay runs at a
time on PostgreSQL and SQLite alike (a second relay skipping locked rows would
overtake the first), and renews it for every batch.

Per-key order. Kafka keeps order per partition, and a key always maps to the
same partition of its topic, so the ordering key is ``(topic, key)``. Rows are
handed to the idempotent producer in id order without waiting (pipelined:
batch N+1 is read and sent while batch N's answers arrive; then batch N's
acknowledged rows are marked published with one UPDATE). The producer keeps
one batch in flight per partition and retries in sequence, so Kafka writes a
key's rows in order. When a row fails as it is handed over, its key is held
back at once; when it fails later, on the producer's I/O thread, ``_fence``
force-closes the sender before that partition's next batch may go, so nothing
queued behind it is sent (those rows stay unpublished and unattempted). A row
that failed in an earlier run is sent alone and awaited before any later row
of its key. So no row of a key ever lands after a failed earlier row of it.

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

import contextlib
import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
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
        # Measured (bench/outbox_relay.py): 256 KiB batches and 5 ms linger send the most per round trip,
        # as each partition has one batch in flight at a time (idempotence keeps its order).
        "linger_ms": 5,
        "batch_size": min(262144, settings.AION_KAFKA_MAX_REQUEST_BYTES),
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


# What the relay reads of a row (no model instances: a tuple per row is what the hot loop needs).
_COLUMNS = ("id", "topic", "key", "event_id", "event_type", "envelope", "attempts")
Row = tuple[int, str, str, Any, str, Any, int]
_ID: Final = 0
_TOPIC: Final = 1
_KEY: Final = 2
_EVENT_ID: Final = 3
_EVENT_TYPE: Final = 4
_ENVELOPE: Final = 5
_ATTEMPTS: Final = 6
_MARK_CHUNK = 900  # ids per UPDATE, under SQLite's bound-parameter limit


def ordering_key(row: Row) -> tuple[str, str]:
    """Rows sharing this reach Kafka in outbox order (one key is one partition of one topic)."""
    return row[_TOPIC], row[_KEY]


def is_row_error(exc: BaseException | None) -> bool:
    """True when Kafka refused this record itself (retrying later cannot help until someone fixes the cause)."""
    import kafka.errors

    kinds = tuple(getattr(kafka.errors, name) for name in _ROW_ERROR_NAMES if hasattr(kafka.errors, name))
    return isinstance(exc, kinds)


def is_withdrawn(exc: BaseException | None) -> bool:
    """True for a record the relay itself took back (the producer was closed before it was sent)."""
    import kafka.errors

    return isinstance(exc, kafka.errors.IllegalStateError)


def describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}" if exc is not None else "not acknowledged in time"


def encode(envelope: Any) -> bytes:
    try:
        return orjson.dumps(envelope)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits: the standard library copes
        return json.dumps(envelope, separators=(",", ":"), default=str).encode()


@dataclass
class RelayRun:
    published: int = 0
    held_back: set[tuple[str, str]] = field(default_factory=set)  # keys with a failed row: nothing later is sent
    failed: list[tuple[Row, str]] = field(default_factory=list)
    unavailable: str = ""
    fenced: threading.Event = field(default_factory=threading.Event)  # a record failed after it left: stop sending


def _fence(producer: Any, run: RelayRun, _exc: BaseException) -> None:
    """Errback, on the producer's I/O thread, of a record that failed after it was handed over.

    A later record of the same partition may already be queued behind it. The producer keeps one
    batch in flight per partition (idempotence), and this runs before that partition's next batch
    may go, so force-closing the sender here withdraws everything queued: nothing can overtake the
    failed row. Withdrawn rows stay unpublished and unattempted; the next run sends them again.
    """
    run.fenced.set()
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()


def _await(future: Any, timeout: float) -> None:
    """Waits up to TIMEOUT for FUTURE; its outcome (or its absence) is read from the future afterwards."""
    with contextlib.suppress(Exception):
        future.get(timeout=max(0.0, timeout))


@dataclass
class Wave:
    sent: list[tuple[Row, Any]] = field(default_factory=list)  # (row, future), in hand-over order


def _hand_over(producer: Any, batch: list[Row], run: RelayRun) -> Wave:
    """Hands BATCH (id order) to the producer without waiting, except for rows that failed before.

    A row is never handed over after an earlier row of its key failed (in this run). A row that
    failed in an earlier run (attempts > 0) is sent alone and its answer awaited before any later
    row of its key: a row Kafka keeps refusing then holds back only its key, run after run.
    """
    wave = Wave()
    fence = functools.partial(_fence, producer, run)
    timeout = settings.AION_KAFKA_TIMEOUT_SECONDS * 1.5
    for row in batch:
        key = ordering_key(row)
        if key in run.held_back:
            continue
        if run.fenced.is_set():
            break
        headers = [("event_id", str(row[_EVENT_ID]).encode()), ("event_type", row[_EVENT_TYPE].encode())]
        try:
            future = producer.send(row[_TOPIC], key=row[_KEY].encode(), value=encode(row[_ENVELOPE]), headers=headers)
        except Exception as exc:  # noqa: BLE001 - any producer error is either about this row or about Kafka
            if is_withdrawn(exc) and run.fenced.is_set():
                break  # the sender was fenced meanwhile; this row was never taken
            run.held_back.add(key)
            run.failed.append((row, describe(exc)))
            if not is_row_error(exc):
                run.unavailable = describe(exc)
                break  # the rest of the batch stays unsent and unpublished
            continue
        if row[_ATTEMPTS]:
            _await(future, timeout)
        elif not future.is_done:
            future.add_errback(fence)
        if future.is_done and future.failed():
            # Failed before anything later of its key was handed over: hold the key back here.
            run.held_back.add(key)
            run.failed.append((row, describe(future.exception)))
            if not is_row_error(future.exception):
                run.unavailable = run.unavailable or describe(future.exception)
            continue
        wave.sent.append((row, future))
    return wave


def _settle(wave: Wave, run: RelayRun, producer: Any, *, own_producer: bool) -> None:
    """Reads WAVE's answers (bounded wait), marks the acknowledged rows published in bulk, records failures."""
    deadline = time.monotonic() + settings.AION_KAFKA_TIMEOUT_SECONDS * 1.5
    acknowledged: list[Row] = []
    for row, future in wave.sent:
        if not future.is_done:
            _await(future, deadline - time.monotonic())
        if future.is_done and future.succeeded():
            acknowledged.append(row)
            continue
        exception = future.exception if future.is_done else None
        if future.is_done and is_withdrawn(exception):
            continue  # taken back by the fence: never sent, sent again next run
        run.held_back.add(ordering_key(row))
        run.failed.append((row, describe(exception)))
        if not is_row_error(exception):
            # Includes an unanswered record: it may still land, so nothing more is sent until the producer is gone.
            if not run.unavailable and own_producer:
                discard_producer()
            run.unavailable = run.unavailable or describe(exception)
            run.fenced.set()
    # A row acknowledged after an earlier row of its key failed cannot happen (the fence and the held-back
    # keys prevent it); it is still counted as published, because Kafka has it.
    run.published += _mark_published(acknowledged)


def _mark_published(rows: list[Row]) -> int:
    if not rows:
        return 0
    now = timezone.now()
    marked = 0
    for start in range(0, len(rows), _MARK_CHUNK):
        ids = [row[_ID] for row in rows[start : start + _MARK_CHUNK]]
        marked += OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True).update(published_at=now)
    per_topic: dict[str, int] = {}
    for row in rows:
        per_topic[row[_TOPIC]] = per_topic.get(row[_TOPIC], 0) + 1
    for topic, count in per_topic.items():
        OUTBOX_PUBLISHED.labels(topic).inc(count)
    return int(marked)


def backoff_seconds(failures: int) -> int:
    return int(min(settings.AION_OUTBOX_MAX_BACKOFF_SECONDS, 2 ** min(failures, 20)))


@dataclass(frozen=True)
class RelayResult:
    """What one relay run did. SKIPPED says why it sent nothing at all ("" when it ran)."""

    published: int = 0
    skipped: str = ""  # "" | "disabled" | "backing_off" | "leased" (another relay holds the lease)
    lease_holder: str = ""  # with "leased", or when another relay took the lease over mid-run
    lease_expires_at: datetime | None = None
    next_attempt_at: datetime | None = None  # with "backing_off"
    error: str = ""  # why Kafka did not take rows (unreachable, or the first refused row); "" when none failed


def _other_holder() -> tuple[str, datetime | None]:
    state = OutboxRelayState.objects.filter(name=STATE_NAME).values_list("holder", "lease_expires_at").first()
    return (state[0], state[1]) if state else ("", None)


def relay_once(*, now: datetime | None = None, max_batches: int = 20, producer: Any = None) -> int:
    """Relays unpublished rows; returns how many were published (0 when disabled, backing off or leased elsewhere)."""
    return relay(now=now, max_batches=max_batches, producer=producer).published


def relay(*, now: datetime | None = None, max_batches: int = 20, producer: Any = None) -> RelayResult:
    """Relays unpublished rows and says what happened (``manage.py outbox_relay`` tells a held lease from a failure).

    Pipelined: batch N+1 is read and handed to Kafka while batch N's answers are on their way, and
    each batch's acknowledged rows are marked published with one UPDATE once their answers are in.
    PRODUCER replaces the shared kafka-python producer (tests); it is never closed here.
    """
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        return RelayResult(skipped="disabled")
    now = now or timezone.now()
    state, _ = OutboxRelayState.objects.get_or_create(name=STATE_NAME)
    if state.next_attempt_at is not None and now < state.next_attempt_at:
        return RelayResult(skipped="backing_off", next_attempt_at=state.next_attempt_at, error=state.last_error)
    holder = holder_id()
    if not _acquire_lease(now, holder):
        other, until = _other_holder()
        return RelayResult(skipped="leased", lease_holder=other, lease_expires_at=until)
    own_producer = producer is None
    lost_lease = False
    run = RelayRun()
    try:
        after_id = 0
        active: Any = None
        in_flight: Wave | None = None
        for _ in range(max_batches):
            batch: list[Row] = list(
                OutboxEvent.objects.filter(published_at__isnull=True, id__gt=after_id)
                .order_by("id")
                .values_list(*_COLUMNS)[: settings.AION_OUTBOX_BATCH_SIZE]
            )
            if not batch:
                break
            after_id = batch[-1][_ID]
            if not _acquire_lease(max(now, timezone.now()), holder):
                lost_lease = True
                break  # the lease ran out and another relay took over: stop sending
            if active is None:
                try:
                    active = producer if producer is not None else get_producer()
                except Exception as exc:  # noqa: BLE001 - e.g. NoBrokersAvailable while building the producer
                    run.failed.append((batch[0], describe(exc)))
                    run.unavailable = describe(exc)
                    break
            wave = _hand_over(active, batch, run)
            if in_flight is not None:
                _settle(in_flight, run, active, own_producer=own_producer)
            in_flight = wave
            if run.unavailable or run.fenced.is_set():
                break
        if in_flight is not None:
            _settle(in_flight, run, active, own_producer=own_producer)
        _record_run(run, now, own_producer=own_producer)
        other, until = _other_holder() if lost_lease else ("", None)
        error = run.unavailable or (run.failed[0][1] if run.failed else "")
        return RelayResult(published=run.published, lease_holder=other, lease_expires_at=until, error=error)
    finally:
        _release_lease(holder)


def _record_run(run: RelayRun, now: datetime, *, own_producer: bool) -> None:
    """Keeps each failed row's error, and backs off only when Kafka looked unreachable."""
    for row, error in run.failed:
        OUTBOX_ROW_FAILURES.labels(row[_TOPIC]).inc()
        OutboxEvent.objects.filter(pk=row[_ID]).update(attempts=row[_ATTEMPTS] + 1, last_error=error[:2000])
    if run.fenced.is_set() and own_producer:
        discard_producer()  # its sender was force-closed; the next run builds a new one
    if not run.unavailable:
        first_error = f"event {run.failed[0][0][_EVENT_ID]}: {run.failed[0][1]}" if run.failed else ""
        OutboxRelayState.objects.filter(name=STATE_NAME).update(
            consecutive_failures=0, next_attempt_at=None, last_error=first_error[:2000], last_success_at=timezone.now()
        )
        for row, error in run.failed:
            logger.warning(
                "outbox row refused by Kafka; its key waits",
                extra={"error": error[:300], "event_id": str(row[_EVENT_ID]), "topic": row[_TOPIC]},
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
