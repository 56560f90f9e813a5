"""The names the contract fixes (shared/spec/contract.md) exist in the product, spelled exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from aion.roles import Role
from aion.topics import TOPICS

ROOT = Path(settings.BASE_DIR)

ENVIRONMENT = [
    "AION_VAR_DIR", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "KAFKA_BOOTSTRAP_SERVERS", "QDRANT_URL",
    "MONGO_URL", "AION_S3_ENDPOINT_URL", "AION_S3_ACCESS_KEY_ID", "AION_S3_SECRET_ACCESS_KEY", "VAULT_ADDR",
    "AION_GATEWAY_API_KEYS", "AION_HOOK_SOURCES", "AION_ROUTER_POLICY_PATH", "AION_COSIGN_PUBLIC_KEYS",
    "AION_EMBEDDINGS_URL", "AION_MEMORY_MAX_CHUNK_BYTES", "AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "AION_LOG_TTL_DAYS",
    "AION_CLICKHOUSE_TTL_DAYS", "AION_BACKUP_RETENTION_DAYS", "AION_ENV", "AION_ADMIN_PASSWORD", "CLICKHOUSE_URL",
    "AION_ORAS_REGISTRY",
]  # fmt: skip
ROLES = {
    "kernel.admin", "kernel.proposer", "kernel.breakglass", "hooks.admin", "memory.writer", "memory.reader",
    "router.admin", "modules.admin", "auditor", "security.admin",
    "kernel.agent",  # issue 17: the node agent's credential (the contract's host runtime)
}  # fmt: skip
TOPIC_NAMES = {
    "kernel.proposals", "aion.metrics.runtime", "aion.audit.activity", "aion.router.decisions", "aion.tasks.lifecycle",
    "security.incidents",
}  # fmt: skip
METRICS = [
    "k_rollbacks_total", "k_proposals_total", "k_breakglass_total", "webhook_failures_total",
    "hook_signature_failures_total", "memory_ingest_bytes_total", "memory_uploads", "router_task_latency_seconds",
    "router_decisions_total", "router_queue_depth", "router_budget_spent_usd", "module_up", "aion_backup_failures_total",
]  # fmt: skip
HEADERS = [
    "x-api-key", "x-tenant-id", "x-request-id", "Idempotency-Key", "Idempotent-Replay", "RateLimit-Limit",
    "RateLimit-Remaining", "RateLimit-Reset", "Retry-After", "x-omerta-signature", "x-omerta-delivery", "x-omerta-event",
]  # fmt: skip
FILES = [
    "deploy/k8s", "deploy/kafka/topics", "deploy/minio/lifecycle.json", "deploy/cosign/README.md", "deploy/grafana",
    "bigdata/sql/clickhouse_retention.sql", "policies/secrets", "scripts/sync_secrets.sh", "modules.yml",
]  # fmt: skip


def _source_text() -> str:
    parts = []
    for folder in ("aion", "kernel", "hooks", "memory", "router", "modules", "console"):
        parts.extend(p.read_text() for p in (ROOT / folder).rglob("*.py") if "tests" not in p.parts)
    return "\n".join(parts)


@pytest.mark.parametrize("name", ENVIRONMENT)
def test_every_contract_variable_is_read_by_settings(name):
    assert f'"{name}"' in (ROOT / "aion" / "settings.py").read_text(), f"{name} is not read in aion/settings.py"


def test_the_database_pool_size_variable_is_read_and_documented():
    """The contract's second round: "the database pool size variable you document" (docs/architecture.md)."""
    assert '"AION_DB_POOL_SIZE"' in (ROOT / "aion" / "settings.py").read_text()
    assert "`AION_DB_POOL_SIZE`" in (ROOT / "docs" / "architecture.md").read_text()


def test_roles_are_exactly_the_contracts():
    assert {role.value for role in Role} == ROLES


def test_contract_topics_are_registered():
    assert TOPIC_NAMES <= set(TOPICS)


def test_every_header_is_used_by_the_code():
    text = _source_text().lower()
    missing = [h for h in HEADERS if h.lower() not in text and "http_" + h.lower().replace("-", "_") not in text]
    assert missing == []


@pytest.mark.parametrize("path", FILES)
def test_every_file_the_runbook_names_exists(path):
    assert (ROOT / path).exists(), path


def test_minio_lifecycle_has_the_memory_retention_rule():
    rules = json.loads((ROOT / "deploy/minio/lifecycle.json").read_text())["Rules"]
    assert "memory-retention" in {rule.get("ID") for rule in rules}


@pytest.mark.django_db
def test_every_contract_metric_is_exported(client):
    text = client.get("/metrics").content.decode()
    missing = [name for name in METRICS if f"# HELP {name} " not in text and f"# TYPE {name} " not in text]
    assert missing == [], f"not on /metrics: {missing}"
