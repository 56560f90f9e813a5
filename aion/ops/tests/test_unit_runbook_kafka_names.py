"""docs/runbook.md names only Kafka groups, topics and brokers the code uses (issue 15 §6).

Groups: every ``--group X`` is a consumer group of ``aion.topics.CONSUMER_GROUPS``, and every consumer in the
code takes its ``group_id`` from those constants (no literal group ids). Topics: every ``--topic X``, every
``aion.<area>.<name>``, and every backticked dotted name phrased as a topic ("the `X` topic", "topic `X`",
"on `X`", "a `X` event" unless followed by "on", which makes X the event type) is in ``aion.topics.TOPICS``
and has its ``deploy/kafka/topics/`` manifest. ``--bootstrap-server`` is the configmap's broker.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.conf import settings
from django.test import override_settings

from aion import topics
from aion.ops.tests.test_it_runbook import runbook

ROOT = Path(settings.BASE_DIR)

GROUP = re.compile(r"--group[\s=]+([A-Za-z0-9._-]+)")
TOPIC_FLAG = re.compile(r"--topic[\s=]+([A-Za-z0-9._-]+)")
AION_TOPIC = re.compile(r"(?<![\w./-])(aion\.[a-z0-9_]+\.[a-z0-9_]+)(?![\w-]|\.[a-z0-9_])")
DOTTED = r"`([a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)+)`"
TOPIC_PHRASES = (
    re.compile(DOTTED + r" topic\b"),
    re.compile(r"\btopic " + DOTTED),
    re.compile(r"\bon " + DOTTED),
    re.compile(DOTTED + r" events?\b(?! on\b)"),
)
BOOTSTRAP = re.compile(r"--bootstrap-server[\s=]+([A-Za-z0-9.:,_-]+)")
GROUP_ID = re.compile(r"""["']?group_id["']?\s*[:=]\s*([^,)\n]+)""")
NOT_APP_CODE = {".venv", "node_modules", "tests", "testing", "bench", "migrations"}


def groups_named(text: str) -> set[str]:
    return set(GROUP.findall(text))


def topics_named(text: str) -> set[str]:
    found = set(TOPIC_FLAG.findall(text)) | set(AION_TOPIC.findall(text))
    for phrase in TOPIC_PHRASES:
        found |= set(phrase.findall(text))
    return found


def code_group_ids() -> dict[str, str]:
    """``group_id`` expressions in application code (not tests), by file."""
    found: dict[str, str] = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if NOT_APP_CODE & set(relative.parts) or relative.name.startswith("test_"):
            continue
        for expression in GROUP_ID.findall(path.read_text(errors="replace")):
            found[f"{relative}: {expression.strip()}"] = expression.strip()
    return found


def test_every_consumer_group_in_the_runbook_is_one_the_code_joins():
    named = groups_named(runbook())
    assert topics.CONTROL_PLANE_GROUP in named  # the runbook describes the control plane's lag
    unknown = sorted(named - set(topics.CONSUMER_GROUPS))
    assert unknown == [], f"docs/runbook.md names consumer groups no code joins: {unknown}"


def test_every_consumer_in_the_code_takes_its_group_from_the_registry():
    registry = {name for name in dir(topics) if name.endswith("_GROUP") and getattr(topics, name) in topics.CONSUMER_GROUPS}
    uses = code_group_ids()
    assert any("router/runtime_ingest.py" in where for where in uses), uses
    stray = sorted(where for where, expression in uses.items() if expression.split(".")[-1] not in registry)
    assert stray == [], f"consumer group ids must be aion.topics constants listed in CONSUMER_GROUPS: {stray}"
    for group, read in topics.CONSUMER_GROUPS.items():
        assert read and set(read) <= set(topics.TOPICS), group

    from router.runtime_ingest import consumer_config

    with override_settings(KAFKA_BOOTSTRAP_SERVERS=["kafka:9092"]):
        assert consumer_config()["group_id"] == topics.CONTROL_PLANE_GROUP


def test_every_topic_in_the_runbook_is_registered_and_has_its_manifest():
    named = topics_named(runbook())
    assert {topics.METRICS_RUNTIME, topics.KERNEL_PROPOSALS, topics.SECURITY_INCIDENTS} <= named
    unknown = sorted(named - set(topics.TOPICS))
    assert unknown == [], f"docs/runbook.md names topics that are not in aion/topics.py: {unknown}"
    manifests = set()
    for path in (ROOT / "deploy" / "kafka" / "topics").glob("*.yaml"):
        manifests |= {doc["spec"]["topicName"] for doc in yaml.safe_load_all(path.read_text()) if doc}
    missing = sorted(named - manifests)
    assert missing == [], f"docs/runbook.md names topics without a deploy/kafka/topics/ manifest: {missing}"


def test_the_runbook_s_kafka_commands_address_the_configured_broker():
    configmap = next(d for d in yaml.safe_load_all((ROOT / "deploy/k8s/configmap.yaml").read_text()) if d and d["kind"] == "ConfigMap")
    brokers = set(BOOTSTRAP.findall(runbook()))
    assert brokers == {configmap["data"]["KAFKA_BOOTSTRAP_SERVERS"]}


def test_the_extractors():
    text = (
        "`kafka-consumer-groups.sh --bootstrap-server kafka:9092 --group control-plane --describe`; "
        "`kafka-console-consumer.sh --topic aion.tasks.lifecycle`; the `aion.metrics.runtime` topic; "
        "a `kernel.proposals` event (`kernel.proposal.approved`); a `kernel.host.drifted` event on `kernel.proposals`; "
        "published as `webhook.delivery.failed` on `aion.webhooks.deliveries`; role `kernel.admin`; "
        "OPTIMIZE TABLE aion.router_decisions; see aion.io/pool and docs/events/aion.memory.uploads.json"
    )
    assert groups_named(text) == {"control-plane"}
    assert topics_named(text) == {"aion.tasks.lifecycle", "aion.metrics.runtime", "kernel.proposals", "aion.webhooks.deliveries"}
    assert BOOTSTRAP.findall(text) == ["kafka:9092"]
    assert GROUP_ID.findall('KafkaConsumer(group_id=CONTROL_PLANE_GROUP, x=1)\n"group_id": topics.CONTROL_PLANE_GROUP,') == [
        "CONTROL_PLANE_GROUP",
        "topics.CONTROL_PLANE_GROUP",
    ]
