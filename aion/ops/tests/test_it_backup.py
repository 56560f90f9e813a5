"""manage.py backup / restore on the configured database, the nightly job, pruning and failure handling.

Runs on whichever database the test run selects: the SQLite online backup API on
the embedded default, pg_dump/pg_restore on PostgreSQL (the round trip into a
fresh database is in test_it_backup_postgres.py). Storage is the real local
``backups`` storage under AION_VAR_DIR.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.utils import timezone

from aion.models import AuditRecord
from aion.ops.choices import BackupStatus, JobRunStatus
from aion.ops.models import Backup, JobRun
from aion.ops.services import create_backup, database_kind, prune_backups
from aion.testing.factories import TENANT, make_api_key

pytestmark = pytest.mark.django_db


def _sha(key: str) -> str:
    with storages["backups"].open(key, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _objects() -> set[str]:
    storage = storages["backups"]
    found = set()
    for prefix in ("pg", "sqlite", "mongo", "tmp"):
        if storage.exists(prefix):
            found |= {f"{prefix}/{name}" for name in storage.listdir(prefix)[1]}
    return found


def _metric(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_backup_command_writes_a_complete_object_and_a_record(capsys):
    make_api_key(["auditor"], TENANT, name="data to keep")
    call_command("backup")
    backup = Backup.objects.get()
    assert backup.status == BackupStatus.SUCCEEDED
    prefix = "pg/" if database_kind() == "postgres" else "sqlite/"
    assert backup.key.startswith(prefix)
    assert backup.key.endswith(".dump" if prefix == "pg/" else ".sqlite3")
    assert re.fullmatch(r"pg_dump \d+\.\d+" if prefix == "pg/" else r"sqlite \d+\.\d+\.\d+", backup.tool), backup.tool  # what wrote it
    assert backup.size_bytes and backup.size_bytes > 0
    assert backup.sha256 == _sha(backup.key)
    assert backup.duration_ms is not None
    assert not [key for key in _objects() if key.startswith("tmp/")]  # the temporary object was renamed
    assert AuditRecord.objects.filter(action="ops.backup.succeeded", resource_id=str(backup.pk)).exists()
    assert backup.key in capsys.readouterr().out


@pytest.mark.sqlite  # the PostgreSQL round trip is test_it_backup_postgres.py
@pytest.mark.django_db(transaction=True)  # the backup reads committed rows only
def test_restore_refuses_without_yes_and_restores_into_a_named_sqlite_database(tmp_path):
    assert database_kind() == "sqlite"
    make_api_key(["auditor"], TENANT, name="row one")
    make_api_key(["auditor"], TENANT, name="row two")
    backup = create_backup()
    target = tmp_path / "restored.sqlite3"
    with pytest.raises(CommandError, match="without --yes"):
        call_command("restore", str(backup.pk), "--target-database", str(target))
    assert not target.exists()
    call_command("restore", backup.key, "--target-database", str(target), "--yes")
    with sqlite3.connect(target) as restored:
        names = sorted(r[0] for r in restored.execute("SELECT name FROM aion_apikey"))
    assert names == ["row one", "row two"]


def test_restore_refuses_an_object_whose_checksum_changed(tmp_path):
    backup = create_backup()
    Backup.objects.filter(pk=backup.pk).update(sha256="0" * 64)
    with pytest.raises(CommandError, match="sha256"):
        call_command("restore", str(backup.pk), "--target-database", str(tmp_path / "x.sqlite3"), "--yes")


def test_restore_names_an_unknown_backup():
    with pytest.raises(CommandError, match="no completed backup"):
        call_command("restore", "pg/nothing.dump", "--yes")


def test_a_failed_backup_is_recorded_counted_and_leaves_no_complete_looking_object(settings, tmp_path, monkeypatch):
    """Fault injection: on PostgreSQL a stand-in pg_dump writes half a dump and exits 2; on SQLite the
    backup source is a file that is not a database. Either way the failure happens mid-stream."""
    kind = database_kind()
    before = _metric("aion_backup_failures_total", kind=kind)
    if kind == "postgres":
        broken = tmp_path / "pg_dump"
        broken.write_text("#!/bin/sh\nprintf 'PGDMP partial bytes'\necho 'connection lost' >&2\nexit 2\n")
        broken.chmod(0o755)
        settings.AION_PG_DUMP = str(broken)
    else:
        garbage = tmp_path / "not-a-database.sqlite3"
        garbage.write_bytes(b"this is not sqlite" * 1000)
        monkeypatch.setattr("aion.ops.services.sqlite_source_path", lambda: str(garbage))
    objects_before = _objects()
    backup = create_backup()
    assert backup.status == BackupStatus.FAILED
    assert backup.error
    assert backup.key == ""
    assert _metric("aion_backup_failures_total", kind=kind) == before + 1
    assert _objects() == objects_before  # neither a final object nor a leftover temporary one
    assert AuditRecord.objects.filter(action="ops.backup.failed", result="failed").exists()
    with pytest.raises(CommandError, match="failed"):
        call_command("backup")  # still failing: the command exits non-zero


def test_prune_deletes_objects_older_than_the_retention_and_keeps_the_record(settings):
    settings.AION_BACKUP_RETENTION_DAYS = 7
    now = timezone.now()
    old = create_backup(now=now - timedelta(days=8))
    fresh = create_backup(now=now)
    assert old.key != fresh.key
    pruned = prune_backups(now=now)
    assert [b.pk for b in pruned] == [old.pk]
    old.refresh_from_db()
    assert old.status == BackupStatus.PRUNED and old.pruned_at is not None
    assert not storages["backups"].exists(old.key)
    assert storages["backups"].exists(fresh.key)
    assert prune_backups(now=now) == []  # idempotent


def test_nightly_backup_job_backs_up_prunes_and_records_its_run():
    from aion.ops.tasks import nightly_backup

    result = nightly_backup()
    assert len(result["backups"]) == 1
    assert Backup.objects.filter(status=BackupStatus.SUCCEEDED).count() == 1
    assert JobRun.objects.get(job_name="ops.nightly_backup").status == JobRunStatus.SUCCEEDED


def test_nightly_backup_job_run_is_failed_when_a_backup_fails(settings):
    from aion.ops.tasks import BackupFailed, nightly_backup

    settings.MONGO_URL = "mongodb://127.0.0.1:1"  # nothing listens: the Mongo part fails
    with pytest.raises(BackupFailed):
        nightly_backup()
    run = JobRun.objects.get(job_name="ops.nightly_backup")
    assert run.status == JobRunStatus.FAILED
    assert "BackupFailed" in run.traceback
    assert Backup.objects.filter(kind="mongo", status=BackupStatus.FAILED).exists()
