"""manage.py backup then restore round-trips on the real PostgreSQL (pg_dump/pg_restore 15)."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from django.core.management import call_command
from django.db import connection

from aion.ops.models import Backup
from aion.ops.services import _postgres_admin_connection
from aion.testing.factories import OTHER_TENANT, TENANT, make_api_key, make_user
from aion.testing.services import service_missing

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KEY_TABLES = {
    "aion_apikey": "SELECT prefix, name, tenant_id, key_hash FROM aion_apikey ORDER BY prefix",
    "auth_user": "SELECT username, password FROM auth_user ORDER BY username",
    "aion_usertenant": "SELECT tenant_id FROM aion_usertenant ORDER BY tenant_id",
    "aion_auditrecord": "SELECT action, resource_id FROM aion_auditrecord WHERE action <> 'ops.backup.succeeded' ORDER BY id",
}


def _fingerprint(cursor) -> dict[str, tuple[int, str]]:
    out = {}
    for table, query in KEY_TABLES.items():
        cursor.execute(query)
        rows = cursor.fetchall()
        out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


def test_backup_then_restore_into_a_fresh_database_round_trips(require_postgres):
    for tool in ("pg_dump", "pg_restore"):
        if not shutil.which(tool):
            service_missing(tool, "the PostgreSQL 15 client tools are not on PATH")
    # 1. data
    for i in range(5):
        make_api_key(["auditor"], TENANT, name=f"key {i}")
    make_user("owner", ["kernel.admin"], TENANT)
    make_user("outsider", ["kernel.admin"], OTHER_TENANT)
    from aion import audit
    from aion.auth.principal import system_principal

    audit.record("test.marker", "thing", "1", actor=system_principal(TENANT), tenant_id=TENANT)
    with connection.cursor() as cursor:
        source = _fingerprint(cursor)
    # 2. back up
    call_command("backup")
    backup = Backup.objects.get(kind="postgres")
    assert backup.key.startswith("pg/") and backup.key.endswith(".dump")
    # 3. restore into a fresh database
    target = f"{connection.settings_dict['NAME']}_restored"
    with _postgres_admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{target}"')
    try:
        call_command("restore", str(backup.pk), "--target-database", target, "--yes")
        # 4. compare row counts and checksums of key tables
        import psycopg

        db = connection.settings_dict
        with psycopg.connect(
            host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None, dbname=target
        ) as restored:
            with restored.cursor() as cursor:
                assert _fingerprint(cursor) == source
                cursor.execute("SELECT count(*) FROM django_migrations")
                assert cursor.fetchone()[0] > 10
        # Restoring again over the now non-empty target is clean too (--clean --if-exists).
        call_command("restore", backup.key, "--target-database", target, "--yes")
    finally:
        with _postgres_admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
