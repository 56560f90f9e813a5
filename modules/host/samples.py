"""One runtime sample per invocation on ``aion.metrics.runtime`` (when ``KAFKA_BOOTSTRAP_SERVERS`` is set).

The record is the event envelope the control plane's consumer (``router/runtime_ingest.py``, group
``control-plane``) reads: ``type`` ``module.sample``, the tenant from ``x-tenant-id``, and ``data`` with
``sample_id`` (a fresh uuid: the consumer stores each id once), ``module``, ``version``, ``pool``, ``intent``,
``outcome`` (ok, error, timeout), ``latency_ms``, ``tokens``, and ``task_id`` when the caller's
``Idempotency-Key`` is the router's task id. The key is the module name (one module's samples stay in order).

Publishing never delays an answer: samples go through a bounded queue to a background thread that owns the
kafka-python producer (created, and re-created after a failure, with back-off). A full queue drops the sample
and counts it (``module_host_samples_total{result="dropped"}``): the router records its own attempts anyway.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from aion.topics import METRICS_RUNTIME

logger = logging.getLogger("aion.module_host.samples")
QUEUE_SIZE = 10_000


def sample_envelope(
    *,
    module: str,
    version: str,
    pool: str,
    intent: str,
    outcome: str,
    latency_ms: float,
    tokens: int,
    tenant_id: str = "",
    task_id: str = "",
    request_id: str = "",
    target: str = "",
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    data: dict[str, Any] = {
        "sample_id": str(uuid.uuid4()),
        "module": module,
        "version": version,
        "pool": pool,
        "intent": intent,
        "outcome": outcome,
        "latency_ms": round(latency_ms, 3),
        "tokens": tokens,
        "observed_at": now,
    }
    if target:
        data["target"] = target
    try:
        data["task_id"] = str(uuid.UUID(task_id))
    except ValueError:
        pass  # not a router task id: the sample stands alone
    return {
        "event_id": str(uuid.uuid4()),
        "type": "module.sample",
        "occurred_at": now,
        "tenant_id": tenant_id[:64],
        "actor": f"system:module-host:{module}",
        "request_id": request_id[:128],
        "data": data,
    }


class SamplePublisher:
    """Hands samples to Kafka from a background thread; ``close`` flushes what is queued (bounded by a deadline)."""

    def __init__(self, bootstrap: list[str], registry: CollectorRegistry, *, client_id: str = "aion-module-host") -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.samples = Counter("module_host_samples", "Runtime samples by result (sent, failed, dropped)", ["result"], registry=registry)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sample-publisher", daemon=True)
        self._thread.start()

    def publish(self, envelope: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(envelope)
        except queue.Full:
            self.samples.labels(result="dropped").inc()

    def _producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            acks="all",
            linger_ms=20,
            retries=5,
            value_serializer=lambda value: json.dumps(value, separators=(",", ":")).encode(),
            key_serializer=lambda value: value.encode(),
        )

    def _run(self) -> None:
        producer: Any = None
        backoff = 0.5
        while True:
            item = self._queue.get()
            if item is None:
                break
            while producer is None and not self._stopped.is_set():
                try:
                    producer = self._producer()
                    backoff = 0.5
                except Exception as exc:  # noqa: BLE001  # no broker yet (any kafka-python error): keep the sample, try again
                    logger.warning("Kafka is unreachable for runtime samples; retrying", extra={"error": repr(exc)})
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
            if producer is None:
                self.samples.labels(result="dropped").inc()
                continue
            try:
                future = producer.send(METRICS_RUNTIME, key=str(item["data"]["module"]), value=item)
                future.add_callback(lambda _meta: self.samples.labels(result="sent").inc())
                future.add_errback(self._failed)
            except Exception as exc:  # noqa: BLE001  # a sample must never take the publisher thread down
                self._failed(exc)
        if producer is not None:
            try:
                producer.flush(timeout=10)
                producer.close(timeout=5)
            except Exception:
                logger.exception("closing the sample producer failed")

    def _failed(self, exc: BaseException) -> None:
        self.samples.labels(result="failed").inc()
        logger.warning("a runtime sample was not delivered", extra={"error": repr(exc)})

    def close(self, timeout: float = 15.0) -> None:
        self._stopped.set()
        try:
            self._queue.put(None, timeout=1)
        except queue.Full:
            pass
        self._thread.join(timeout)
