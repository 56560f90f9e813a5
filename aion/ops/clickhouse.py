"""ClickHouse: the shipped DDL and retention script, and the exporter of analytics rows.

The exporter reads the outbox (the same events Kafka receives) from where it
last stopped (``ops.ExportCursor``) and inserts router decisions, task latency
samples and audit events into the tables of ``bigdata/sql/`` through
clickhouse-connect. It runs as the ``ops.export_clickhouse`` beat job and does
nothing unless CLICKHOUSE_URL is set.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion.topics import AUDIT_ACTIVITY, METRICS_RUNTIME, ROUTER_DECISIONS

SQL_DIR = Path(settings.BASE_DIR) / "bigdata" / "sql"
RETENTION_FILE = SQL_DIR / "clickhouse_retention.sql"
S3_BACKUP_FILE = SQL_DIR / "backup" / "clickhouse_to_s3.sql"
_SET_TTL = re.compile(r"^SET param_ttl_days = \d+;$", re.MULTILINE)
CURSOR_NAME = "clickhouse"


def ddl_files() -> list[Path]:
    """The table DDL (``0*.sql``), in the order to apply it; retention and backup scripts are separate."""
    return sorted(SQL_DIR.glob("0*.sql"))


def split_statements(text: str) -> list[str]:
    """Statements of a ``clickhouse-client -n`` script (comments dropped; no ';' inside literals here)."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def render_retention(days: int | None = None) -> str:
    """The retention script with AION_CLICKHOUSE_TTL_DAYS (or DAYS) substituted."""
    days = int(settings.AION_CLICKHOUSE_TTL_DAYS if days is None else days)
    if days < 1:
        raise ValueError("the ClickHouse TTL must be at least one day")
    text = RETENTION_FILE.read_text()
    rendered, count = _SET_TTL.subn(f"SET param_ttl_days = {days};", text)
    if count != 1:
        raise ValueError(f"{RETENTION_FILE} must contain exactly one 'SET param_ttl_days = N;' line")
    return rendered


# --- the exporter ---------------------------------------------------------------------------------

COLUMNS = {
    "router_decisions": [
        "decided_at", "event_id", "tenant_id", "task_id", "route", "target", "strategy", "chosen_by", "reason",
        "policy_revision", "payload",
    ],
    "task_latency": ["observed_at", "event_id", "tenant_id", "task_id", "target", "route", "outcome", "latency_ms", "tokens", "cost_usd"],
    "audit_events": ["created_at", "event_id", "tenant_id", "actor", "action", "resource_type", "resource_id", "result", "request_id"],
}  # fmt: skip
TOPIC_TABLES = {ROUTER_DECISIONS: "router_decisions", METRICS_RUNTIME: "task_latency", AUDIT_ACTIVITY: "audit_events"}


def _when(envelope: dict[str, Any]) -> datetime:
    try:
        value = datetime.fromisoformat(str(envelope.get("occurred_at")))
    except ValueError:
        value = timezone.now()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # DateTime('UTC') columns: clickhouse-connect wants naive UTC or aware datetimes; send aware UTC.
    return value.astimezone(UTC).replace(microsecond=0)


def _number(value: Any, cast: type = float) -> Any:
    try:
        return cast(value or 0)
    except (TypeError, ValueError):
        return cast(0)


def row_for(table: str, envelope: dict[str, Any]) -> list[Any] | None:
    """One table row from an outbox envelope, or None when the event has no row there."""
    data = envelope.get("data") or {}
    event_id = uuid.UUID(str(envelope.get("event_id") or uuid.uuid4()))
    tenant = str(envelope.get("tenant_id") or "")
    when = _when(envelope)
    if table == "router_decisions":
        return [
            when, event_id, tenant, str(data.get("task_id", "")), str(data.get("route", "")), str(data.get("target", "")),
            str(data.get("strategy", "")), str(data.get("chosen_by", "")), str(data.get("reason", ""))[:2000],
            _number(data.get("policy_revision"), int), json.dumps(data, default=str, sort_keys=True),
        ]  # fmt: skip
    if table == "task_latency":
        if "latency_ms" not in data:
            return None
        return [
            when, event_id, tenant, str(data.get("task_id", "")), str(data.get("target", "")), str(data.get("route", "")),
            str(data.get("outcome", "")), _number(data.get("latency_ms")), _number(data.get("tokens"), int), _number(data.get("cost_usd")),
        ]  # fmt: skip
    if table == "audit_events":
        return [
            when, event_id, tenant, str(envelope.get("actor", "")), str(data.get("action", "")), str(data.get("resource_type", "")),
            str(data.get("resource_id", "")), str(data.get("result", "")), str(envelope.get("request_id", "")),
        ]  # fmt: skip
    return None


def clickhouse_client(url: str | None = None) -> Any:
    """A clickhouse-connect client for CLICKHOUSE_URL (http(s)://user:password@host:8123/database)."""
    import clickhouse_connect

    parsed = urlparse(url or settings.CLICKHOUSE_URL)
    return clickhouse_connect.get_client(
        host=parsed.hostname or "localhost",
        port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
        username=parsed.username or "default",
        password=parsed.password or "",
        database=(parsed.path or "").strip("/") or settings.AION_CLICKHOUSE_DATABASE,
        secure=parsed.scheme == "https",
    )


def export_once(client: Any = None, *, batch: int | None = None) -> dict[str, int]:
    """Insert outbox events newer than the cursor; returns rows written per table.

    The cursor advances only after ClickHouse accepted the rows, so a failure
    re-sends the batch next time (ORDER BY event_id lets operators deduplicate).
    """
    from aion.models import OutboxEvent
    from aion.ops.metrics import CLICKHOUSE_EXPORTED
    from aion.ops.models import ExportCursor

    if client is None:
        if not settings.CLICKHOUSE_URL:
            return {}
        client = clickhouse_client()
    batch = batch or settings.AION_CLICKHOUSE_EXPORT_BATCH
    cursor, _ = ExportCursor.objects.get_or_create(name=CURSOR_NAME)
    pending = OutboxEvent.objects.filter(pk__gt=cursor.last_event_id, topic__in=list(TOPIC_TABLES)).order_by("pk")
    events = list(pending.values("pk", "topic", "envelope")[:batch])
    if not events:
        return {}
    rows: dict[str, list[list[Any]]] = {table: [] for table in COLUMNS}
    for event in events:
        table = TOPIC_TABLES[event["topic"]]
        row = row_for(table, event["envelope"])
        if row is not None:
            rows[table].append(row)
    written: dict[str, int] = {}
    for table, table_rows in rows.items():
        if table_rows:
            client.insert(table, table_rows, column_names=COLUMNS[table], database=settings.AION_CLICKHOUSE_DATABASE)
            written[table] = len(table_rows)
            CLICKHOUSE_EXPORTED.labels(table).inc(len(table_rows))
    with transaction.atomic():
        ExportCursor.objects.filter(pk=cursor.pk).update(last_event_id=events[-1]["pk"], updated_at=timezone.now())
    return written
