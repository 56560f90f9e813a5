# ruff: noqa: S608 - SQL built from constants of this test module, for the in-process ClickHouse
"""ClickHouse: the shipped DDL and retention script run for real on chdb (in-process ClickHouse),
the render command, and the exporter writing outbox events into those tables.

The exporter normally talks to a server through clickhouse-connect; no ClickHouse
server runs here, so its ``insert`` is served by ``ChdbClient`` below, a small
adapter that executes the same insert on chdb (a fake of the clickhouse-connect
client, not of our code).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from aion.ops.clickhouse import RETENTION_FILE, S3_BACKUP_FILE, ddl_files, export_once, render_retention, split_statements
from aion.outbox import publish
from aion.testing.factories import TENANT
from aion.testing.services import service_missing
from aion.topics import METRICS_RUNTIME, ROUTER_DECISIONS

TABLE_TIME_COLUMNS = {"router_decisions": "decided_at", "task_latency": "observed_at", "audit_events": "created_at"}


@pytest.fixture()
def chdb_session(tmp_path):
    try:
        from chdb import session
    except ImportError:
        service_missing("chdb", "the CI-only extras (requirements-ci.txt) are not installed")
    sess = session.Session(str(tmp_path / "chdb"))
    for path in ddl_files():
        for statement in split_statements(path.read_text()):
            sess.query(statement)
    yield sess
    sess.close()


def _literal(value) -> str:
    if isinstance(value, datetime):
        return f"toDateTime('{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}', 'UTC')"
    if isinstance(value, uuid.UUID):
        return f"toUUID('{value}')"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


class ChdbClient:
    """clickhouse-connect's ``insert(table, rows, column_names=..., database=...)``, executed on chdb."""

    def __init__(self, sess):
        self.sess = sess

    def insert(self, table, rows, column_names, database):
        values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
        self.sess.query(f"INSERT INTO {database}.{table} ({', '.join(column_names)}) VALUES {values}")


def _count(sess, table: str) -> int:
    return int(str(sess.query(f"SELECT count() FROM aion.{table}", "CSV")).strip())


def test_render_clickhouse_retention_substitutes_the_ttl(settings, capsys):
    settings.AION_CLICKHOUSE_TTL_DAYS = 45
    call_command("render_clickhouse_retention")
    out = capsys.readouterr().out
    assert "SET param_ttl_days = 45;" in out
    assert out.count("MODIFY TTL") == 3
    assert out.replace("SET param_ttl_days = 45;", "SET param_ttl_days = 90;") == RETENTION_FILE.read_text()
    call_command("render_clickhouse_retention", "--days", "7")
    assert "SET param_ttl_days = 7;" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("render_clickhouse_retention", "--days", "0")


@pytest.mark.extras
def test_every_table_is_a_mergetree_with_a_ttl_on_its_time_column(chdb_session):
    for table, column in TABLE_TIME_COLUMNS.items():
        ddl = str(chdb_session.query(f"SHOW CREATE TABLE aion.{table}", "TSVRaw"))
        assert "ENGINE = MergeTree" in ddl
        assert f"TTL {column} + toIntervalDay(90)" in ddl


@pytest.mark.extras
def test_the_retention_script_drops_rows_older_than_the_ttl(chdb_session):
    now = datetime.now(UTC).replace(microsecond=0)
    for table, column in TABLE_TIME_COLUMNS.items():
        for age_days in (40, 1):
            chdb_session.query(
                f"INSERT INTO aion.{table} ({column}, event_id, tenant_id) "
                f"VALUES ({_literal(now - timedelta(days=age_days))}, generateUUIDv4(), 'acme')"
            )
        assert _count(chdb_session, table) == 2
    # Rendered with AION_CLICKHOUSE_TTL_DAYS=30 and run as clickhouse-client -n would run it.
    chdb_session.query(render_retention(30))
    for table, column in TABLE_TIME_COLUMNS.items():
        chdb_session.query(f"OPTIMIZE TABLE aion.{table} FINAL")
        assert _count(chdb_session, table) == 1, table
        oldest = str(chdb_session.query(f"SELECT dateDiff('day', min({column}), now()) FROM aion.{table}", "CSV")).strip()
        assert int(oldest) <= 1
        assert "toIntervalDay(_CAST(30" in str(chdb_session.query(f"SHOW CREATE TABLE aion.{table}", "TSVRaw"))


@pytest.mark.extras
@pytest.mark.django_db
def test_the_exporter_writes_router_decisions_task_latency_and_audit_once(chdb_session):
    from aion import audit
    from aion.auth.principal import system_principal

    decision = {"task_id": "t-1", "route": "local", "target": "llama", "strategy": "cost", "chosen_by": "policy", "reason": "cheapest"}
    publish(ROUTER_DECISIONS, "t-1", {**decision, "policy_revision": 3}, event_type="router.decision", tenant_id=TENANT)
    publish(
        METRICS_RUNTIME,
        "llama",
        {"task_id": "t-1", "target": "llama", "route": "local", "outcome": "ok", "latency_ms": 12.5, "tokens": 40, "cost_usd": 0.001},
        event_type="router.sample",
        tenant_id=TENANT,
    )
    audit.record("test.exported", "thing", "9", actor=system_principal(TENANT), tenant_id=TENANT)
    client = ChdbClient(chdb_session)
    written = export_once(client)
    assert written == {"router_decisions": 1, "task_latency": 1, "audit_events": 1}
    assert _count(chdb_session, "router_decisions") == 1
    row = str(chdb_session.query("SELECT target, policy_revision, tenant_id FROM aion.router_decisions", "CSV")).strip()
    assert row == '"llama",3,"acme"'
    assert str(chdb_session.query("SELECT latency_ms FROM aion.task_latency", "CSV")).strip() == "12.5"
    assert str(chdb_session.query("SELECT action FROM aion.audit_events", "CSV")).strip() == '"test.exported"'
    # The cursor moved: nothing is exported twice.
    assert export_once(client) == {}


@pytest.mark.django_db
def test_the_exporter_is_a_no_op_without_clickhouse_url(settings):
    settings.CLICKHOUSE_URL = None
    publish(ROUTER_DECISIONS, "t-2", {"task_id": "t-2"}, event_type="router.decision", tenant_id=TENANT)
    assert export_once() == {}


@pytest.mark.extras
def test_the_s3_backup_script_replicates_every_table_to_the_bucket(chdb_session, s3_server):
    """S3 stand-in: moto's server (aion/testing/s3.py), written to by ClickHouse's own S3 engine."""
    from aion.testing.s3 import ACCESS_KEY, SECRET_KEY

    s3_server.create_bucket("aion-backups")
    client = s3_server.client()
    now = datetime.now(UTC).replace(microsecond=0)
    for table, column in TABLE_TIME_COLUMNS.items():
        for age_days in (0, 1, 2):
            chdb_session.query(
                f"INSERT INTO aion.{table} ({column}, event_id, tenant_id) "
                f"VALUES ({_literal(now - timedelta(days=age_days))}, generateUUIDv4(), 'acme')"
            )
    prefix = f"clickhouse-{uuid.uuid4().hex[:8]}/"
    chdb_session.query(
        f"CREATE NAMED COLLECTION aion_backups_s3 AS url = '{s3_server.endpoint_url}/aion-backups/{prefix}', "
        f"access_key_id = '{ACCESS_KEY}', secret_access_key = '{SECRET_KEY}'"
    )
    statements = split_statements(S3_BACKUP_FILE.read_text())
    chdb_session.query(";\n".join(statements))  # as clickhouse-client -n runs it (one session, SET first)
    chdb_session.query(";\n".join(statements))  # nightly again: the day objects are rewritten, not refused
    for table in TABLE_TIME_COLUMNS:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="aion-backups", Prefix=f"{prefix}{table}/").get("Contents", [])]
        assert len(keys) == 3 and all(k.endswith(".parquet") for k in keys), keys
        copied = str(
            chdb_session.query(f"SELECT count() FROM s3(aion_backups_s3, filename = '{table}/*.parquet', format = 'Parquet')", "CSV")
        ).strip()
        assert int(copied) == _count(chdb_session, table) == 3
