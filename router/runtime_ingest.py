"""The runtime-metrics loop: samples on ``aion.metrics.runtime`` become ``RuntimeSample`` rows (group ``control-plane``).

``manage.py runtime_consumer`` runs ``RuntimeConsumer``. Each poll's records are parsed, stored in one
transaction (one INSERT, conflicts on ``sample_id`` ignored), and only then are the group's offsets committed.
A crash between the two re-delivers the batch, and the second insert finds every id already there: a sample
counts once however often it arrives. The rows are what ``router/stats.py`` reads, so the latency and
least-busy strategies and the unhealthy-target rule see samples from every producer:

- the router's own attempts (``router.sample``, written by the worker in the task's transaction and relayed
  through the outbox; they carry that row's ``sample_id``, so the consumer's insert is a no-op), and
- samples produced straight to Kafka, e.g. by module hosts (``target``, or ``module`` for ``module:<name>``).

The sample id is ``data.sample_id``, else the envelope's ``event_id``. A record that is not a sample (bad JSON,
no target, unknown outcome) is counted as invalid and committed past, so it never blocks its partition.

Each newly stored sample is observed in the histogram ``aion_runtime_sample_latency_seconds{target,outcome}`` (the
Grafana "Router" dashboard's sample latency panels; a duplicate id is not observed again).
Lag (end offset - committed position, per partition) is the gauge ``aion_runtime_consumer_lag``; the process
serves /metrics on ``AION_WORKER_METRICS_PORT`` as workers do, and touches ``--heartbeat-file`` after every
poll (the Deployment's probes read its age).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from prometheus_client import Counter, Gauge, Histogram

from aion.topics import CONTROL_PLANE_GROUP, METRICS_RUNTIME
from router.choices import Outcome
from router.models import RuntimeSample

logger = logging.getLogger("router.runtime_ingest")

SAMPLES = Counter(
    "aion_runtime_consumer_samples_total",
    "Records read from aion.metrics.runtime by result (stored, duplicate, invalid, skipped)",
    ["result"],
)
LAG = Gauge(
    "aion_runtime_consumer_lag",
    "Records on aion.metrics.runtime not yet committed by the control-plane group, per partition",
    ["topic", "partition"],
    multiprocess_mode="livemax",
)

SAMPLE_LATENCY = Histogram(
    "aion_runtime_sample_latency_seconds",
    "Latency of the runtime samples stored from aion.metrics.runtime (each sample id once), by target and outcome",
    ["target", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

_OUTCOMES = {choice.value for choice in Outcome}
_LAG_REFRESH_SECONDS = 5.0


class InvalidSample(ValueError):
    pass


def consumer_config() -> dict[str, Any]:
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set: the runtime consumer has nothing to read")
    max_poll_ms = int(settings.AION_RUNTIME_CONSUMER_MAX_POLL_SECONDS * 1000)
    # Kafka refuses sessions under 6 s (group.min.session.timeout.ms); a dead member is noticed within it.
    session_ms = max(6000, min(45000, max_poll_ms))
    return {
        "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "client_id": f"{settings.AION_KAFKA_CLIENT_ID}-runtime-consumer",
        "group_id": CONTROL_PLANE_GROUP,
        "enable_auto_commit": False,  # committed after the batch is stored, never before
        "auto_offset_reset": "earliest",  # a new group reads the retained samples; ids make that safe
        "max_poll_records": settings.AION_RUNTIME_CONSUMER_BATCH,
        "max_poll_interval_ms": max_poll_ms,
        "session_timeout_ms": session_ms,
        "heartbeat_interval_ms": max(1000, min(3000, session_ms // 3)),
        "bootstrap_timeout_ms": max(1000, int(settings.AION_KAFKA_TIMEOUT_SECONDS * 1000)),
    }


def make_consumer() -> Any:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**consumer_config())
    consumer.subscribe([METRICS_RUNTIME])
    return consumer


def _uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidSample(f"not a uuid: {value!r}") from exc


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidSample(f"{name} is not a number: {value!r}") from exc
    if not math.isfinite(number) or number < 0:
        raise InvalidSample(f"{name} must be a finite number >= 0, not {value!r}")
    return number


def _observed_at(envelope: dict[str, Any], data: dict[str, Any], record_timestamp_ms: int | None, now: datetime) -> datetime:
    """When the attempt happened: the producer's time, else the record's; never in the future (the stats window ends now)."""
    for raw in (data.get("observed_at"), envelope.get("occurred_at")):
        if isinstance(raw, str):
            parsed = parse_datetime(raw)
            if parsed is not None:
                when = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
                return min(when, now)
    if record_timestamp_ms and record_timestamp_ms > 0:
        return min(datetime.fromtimestamp(record_timestamp_ms / 1000, tz=UTC), now)
    return now


def parse_sample(value: bytes, *, record_timestamp_ms: int | None = None, now: datetime | None = None) -> RuntimeSample | None:
    """The ``RuntimeSample`` a record carries; None for a router sample from before sample ids (the worker stored it).

    Raises ``InvalidSample`` when the record is not a runtime sample.
    """
    try:
        envelope = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidSample(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
        raise InvalidSample("not an event envelope with a data object")
    data: dict[str, Any] = envelope["data"]
    sample_id = _uuid(data.get("sample_id"))
    if sample_id is None:
        if envelope.get("type") == "router.sample":
            return None  # relayed before router samples carried their row's id; that row exists already
        sample_id = _uuid(envelope.get("event_id"))
    if sample_id is None:
        raise InvalidSample("no sample_id and no event_id")
    target = str(data.get("target") or (f"module:{data['module']}" if data.get("module") else ""))
    if not target:
        raise InvalidSample("no target (or module)")
    outcome = str(data.get("outcome") or "")
    if outcome not in _OUTCOMES:
        raise InvalidSample(f"unknown outcome {outcome!r} (one of {sorted(_OUTCOMES)})")
    if data.get("latency_ms") is not None:
        latency_ms = _number(data["latency_ms"], "latency_ms")
    elif data.get("latency_seconds") is not None:
        latency_ms = _number(data["latency_seconds"], "latency_seconds") * 1000.0
    else:
        raise InvalidSample("no latency_ms or latency_seconds")
    try:
        cost = Decimal(str(round(_number(data.get("cost_usd") or 0, "cost_usd"), 6)))
    except InvalidOperation as exc:
        raise InvalidSample(f"bad cost_usd {data.get('cost_usd')!r}") from exc
    route = str(data.get("route") or ("local" if data.get("module") else ""))
    return RuntimeSample(
        sample_id=sample_id,
        created_at=_observed_at(envelope, data, record_timestamp_ms, now or timezone.now()),
        tenant_id=str(envelope.get("tenant_id") or data.get("tenant_id") or "")[:64],
        task_id=_uuid(data.get("task_id")),
        target=target[:200],
        route=route[:8],
        outcome=outcome,
        latency_ms=latency_ms,
        tokens=int(_number(data.get("tokens") or 0, "tokens")),
        cost_usd=cost if outcome == Outcome.OK else Decimal(0),
    )


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    skipped: int = 0

    def add(self, other: BatchResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.invalid += other.invalid
        self.skipped += other.skipped


def store_records(records: list[Any]) -> BatchResult:
    """Parses RECORDS and stores their samples in one transaction; an id already stored is a duplicate."""
    result = BatchResult()
    now = timezone.now()
    samples: dict[uuid.UUID, RuntimeSample] = {}
    for record in records:
        try:
            sample = parse_sample(record.value, record_timestamp_ms=getattr(record, "timestamp", None), now=now)
        except InvalidSample as exc:
            result.invalid += 1
            logger.warning(
                "invalid runtime sample skipped",
                extra={"partition": record.partition, "offset": record.offset, "error": str(exc)},
            )
            continue
        if sample is None:
            result.skipped += 1
        elif sample.sample_id in samples:
            result.duplicates += 1  # twice in this batch
        else:
            samples[sample.sample_id] = sample  # type: ignore[index]
    if samples:
        with transaction.atomic():
            existing = set(RuntimeSample.objects.filter(sample_id__in=list(samples)).values_list("sample_id", flat=True))
            new = [s for sid, s in samples.items() if sid not in existing]
            # ignore_conflicts: a concurrent writer of the same id (another member, the worker) wins; counted once.
            RuntimeSample.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
        result.stored += len(new)
        result.duplicates += len(existing)
        for sample in new:  # the Grafana "Router" dashboard's sample latency panels: each id observed once
            SAMPLE_LATENCY.labels(target=sample.target, outcome=sample.outcome).observe(sample.latency_ms / 1000.0)
    counts = {"stored": result.stored, "duplicate": result.duplicates, "invalid": result.invalid, "skipped": result.skipped}
    for label, count in counts.items():
        if count:
            SAMPLES.labels(result=label).inc(count)
    return result


@dataclass
class RunSummary:
    batches: int = 0
    records: int = 0
    samples: BatchResult = field(default_factory=BatchResult)
    lag: dict[int, int] = field(default_factory=dict)


class RuntimeConsumer:
    """Polls, stores, commits; ``stop`` (set from SIGTERM) ends the loop after the batch in hand is committed."""

    def __init__(self, consumer: Any | None = None, *, heartbeat: Path | None = None) -> None:
        self.consumer = consumer if consumer is not None else make_consumer()
        self.heartbeat = heartbeat
        self.stop = threading.Event()
        self._lag_at = 0.0
        self._lag_labels: set[int] = set()

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> RunSummary:
        summary = RunSummary()
        deadline = time.monotonic() + max_seconds if max_seconds else None
        try:
            while not self.stop.is_set() and (deadline is None or time.monotonic() < deadline):
                polled = self.consumer.poll(timeout_ms=1000)
                records = [record for batch in polled.values() for record in batch]
                if records:
                    summary.samples.add(store_records(records))
                    self._commit()
                    summary.batches += 1
                    summary.records += len(records)
                self._beat()
                lag = self.refresh_lag(force=bool(records) or once)
                if lag is not None:
                    summary.lag = lag
                if once and lag is not None and not records and self.consumer.assignment() and all(n <= 0 for n in lag.values()):
                    break  # caught up with what was there: --once is done
        finally:
            self.close()
        return summary

    def _commit(self) -> None:
        from kafka.errors import CommitFailedError

        try:
            self.consumer.commit()  # the positions after this poll: exactly the records just stored
        except CommitFailedError:
            # The group moved the partitions on (a rebalance); the new owner re-reads them and the ids dedupe.
            logger.warning("runtime consumer commit refused after a rebalance; the batch will be re-read (counted once)")

    def refresh_lag(self, *, force: bool = False) -> dict[int, int] | None:
        """End offset - position per assigned partition (the position is committed once a batch is stored); None when not due."""
        if not force and time.monotonic() - self._lag_at < _LAG_REFRESH_SECONDS:
            return None
        self._lag_at = time.monotonic()
        assigned = list(self.consumer.assignment())
        lag: dict[int, int] = {}
        if assigned:
            from kafka.errors import KafkaError

            try:
                ends = self.consumer.end_offsets(assigned)
            except KafkaError as exc:  # Kafka unreachable for a moment: keep polling, report the lag next time
                logger.warning("could not read end offsets for the lag", extra={"error": repr(exc)})
                return None
            for tp in assigned:
                lag[tp.partition] = max(0, int(ends.get(tp) or 0) - int(self.consumer.position(tp) or 0))
        for partition in self._lag_labels - set(lag):
            LAG.remove(METRICS_RUNTIME, str(partition))  # revoked: another member reports it
        for partition, value in lag.items():
            LAG.labels(topic=METRICS_RUNTIME, partition=str(partition)).set(value)
        self._lag_labels = set(lag)
        return lag

    def _beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.touch()

    def close(self) -> None:
        try:
            self.consumer.close(autocommit=False)
        except Exception:
            logger.exception("closing the runtime consumer failed")
