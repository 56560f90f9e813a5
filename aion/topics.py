"""The topic registry: every outbox topic, its partitions and retention.

``deploy/kafka/topics/`` holds one Strimzi KafkaTopic manifest per entry and
``docs/events/<topic>.json`` its JSON Schema; tests check all three agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    partitions: int = 6
    retention_hours: int = 168


KERNEL_PROPOSALS = "kernel.proposals"
KERNEL_HOSTS = "kernel.hosts"
METRICS_RUNTIME = "aion.metrics.runtime"
AUDIT_ACTIVITY = "aion.audit.activity"
ROUTER_DECISIONS = "aion.router.decisions"
ROUTER_POLICIES = "aion.router.policies"
TASKS_LIFECYCLE = "aion.tasks.lifecycle"
SECURITY_INCIDENTS = "security.incidents"
WEBHOOK_DELIVERIES = "aion.webhooks.deliveries"
MEMORY_UPLOADS = "aion.memory.uploads"
MODULE_RELEASES = "modules.releases"

TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(KERNEL_PROPOSALS, "Kernel/network proposal transitions, full state, key = proposal id", retention_hours=24 * 30),
        Topic(
            KERNEL_HOSTS, "Host state transitions reported by node agents (drift, convergence), key = host name", retention_hours=24 * 30
        ),
        Topic(METRICS_RUNTIME, "Router runtime samples per target attempt, key = target", retention_hours=72),
        Topic(AUDIT_ACTIVITY, "Every audit record, key = resource", retention_hours=24 * 30),
        Topic(ROUTER_DECISIONS, "Routing decisions, key = task id", retention_hours=72),
        Topic(ROUTER_POLICIES, "Router policy revisions (reload, rollback), key = tenant", retention_hours=24 * 30),
        Topic(TASKS_LIFECYCLE, "Task state changes, key = task id", retention_hours=72),
        Topic(SECURITY_INCIDENTS, "Failed verifications, key = tenant", retention_hours=24 * 90),
        Topic(WEBHOOK_DELIVERIES, "Outbound webhook delivery outcomes, key = endpoint id", retention_hours=72),
        Topic(MEMORY_UPLOADS, "Memory upload lifecycle, key = upload id", retention_hours=24 * 7),
        Topic(MODULE_RELEASES, "Module registrations, activations and rollbacks, key = module name", retention_hours=24 * 30),
    )
}


# Consumer groups of this code base and the topics each reads; docs/runbook.md names no other group
# (aion/ops/tests/test_unit_runbook_kafka_names.py).
CONTROL_PLANE_GROUP = "control-plane"  # manage.py runtime_consumer (router/runtime_ingest.py)

CONSUMER_GROUPS: dict[str, tuple[str, ...]] = {
    CONTROL_PLANE_GROUP: (METRICS_RUNTIME,),
}


EVENTS_SCHEMA_DIR = "docs/events"


def event_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema (envelope + data) of TOPIC, from ``docs/events/<topic>.json``."""
    from django.conf import settings

    path = Path(settings.BASE_DIR) / EVENTS_SCHEMA_DIR / f"{topic}.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def validate_event(topic: str, envelope: dict[str, Any]) -> None:
    """Raises ``jsonschema.ValidationError`` when ENVELOPE does not match TOPIC's schema (for tests and consumers)."""
    import jsonschema

    jsonschema.validate(envelope, event_schema(topic), format_checker=jsonschema.FormatChecker())
