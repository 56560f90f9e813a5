"""The topic registry, the Strimzi manifests under deploy/kafka/topics/ and the schemas under docs/events/ agree."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

from aion.topics import TOPICS, event_schema

ROOT = Path(settings.BASE_DIR)


def test_one_strimzi_manifest_per_topic_matching_the_registry():
    manifests = {}
    for path in sorted((ROOT / "deploy" / "kafka" / "topics").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert doc["kind"] == "KafkaTopic"
        manifests[doc["spec"]["topicName"]] = doc
    assert set(manifests) == set(TOPICS)
    for name, topic in TOPICS.items():
        spec = manifests[name]["spec"]
        assert spec["partitions"] == topic.partitions, name
        assert spec["replicas"] >= 1
        assert int(spec["config"]["retention.ms"]) == topic.retention_hours * 3600 * 1000, name


def test_runbook_and_issue_topics_are_registered():
    for name in ("kernel.proposals", "aion.metrics.runtime", "aion.audit.activity", "aion.router.decisions", "aion.tasks.lifecycle"):
        assert name in TOPICS


def test_one_schema_per_topic_with_the_envelope():
    files = {path.stem for path in (ROOT / "docs" / "events").glob("*.json")}
    assert files == set(TOPICS)
    for name in TOPICS:
        schema = event_schema(name)
        assert set(schema["required"]) == {"event_id", "type", "occurred_at", "tenant_id", "actor", "request_id", "data"}
        assert schema["x-kafka"]["topic"] == name
