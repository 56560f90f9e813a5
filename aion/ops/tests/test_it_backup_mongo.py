"""MongoDB log store backup: mongodump when installed, else a pymongo export under ``mongo/``; restore.

MongoDB here is nx-27017, a MongoDB wire-protocol server stored on SQLite: a stand-in
for MongoDB (aion/testing/mongo.py). Where mongodump is installed (the image) the first test
runs it; where it is not (this machine) the same test checks the backup says ``pymongo``.
The fallback is always exercised (a missing AION_MONGODUMP): backup, drop, restore, compare.
"""

from __future__ import annotations

import shutil

import pymongo
import pytest
from django.core.management import call_command
from django.utils import timezone

from aion.ops.choices import BackupKind, BackupStatus
from aion.ops.logstore import mongo_database
from aion.ops.models import Backup
from aion.ops.services import create_backup

pytestmark = pytest.mark.django_db


def test_backup_exports_the_log_collections_and_restore_brings_them_back(mongo_log_store, settings, mongo_database_name):
    """MongoDB stand-in: nx-27017."""
    database = mongo_database()
    now = timezone.now()
    database["request_logs"].insert_many([{"created_at": now, "path": f"/p/{i}", "status": 200} for i in range(5)])
    database["audit_logs"].insert_one({"created_at": now, "action": "kernel.proposal.approved", "actor": "user:alice"})
    call_command("backup")  # the database, and MongoDB because MONGO_URL is set
    backup = Backup.objects.get(kind=BackupKind.MONGO)
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    expected_method = "mongodump" if shutil.which(settings.AION_MONGODUMP) else "pymongo-export"
    assert backup.method == expected_method
    # Which tool made it, with its version (the image pins the MongoDB Database Tools 100.x).
    assert backup.tool.startswith("mongodump 100.") if expected_method == "mongodump" else backup.tool == f"pymongo {pymongo.version}"
    assert backup.key.startswith("mongo/") and backup.key.endswith(".archive.gz" if expected_method == "mongodump" else ".jsonl.gz")

    target = f"{mongo_database_name}_restored"
    call_command("restore", backup.key, "--target-database", target, "--yes")
    restored = mongo_database(name=target)
    assert sorted(d["path"] for d in restored["request_logs"].find()) == [f"/p/{i}" for i in range(5)]
    assert restored["audit_logs"].find_one()["actor"] == "user:alice"
    # Restoring again is idempotent (documents are upserted by _id).
    call_command("restore", str(backup.pk), "--target-database", target, "--yes")
    assert restored["request_logs"].count_documents({}) == 5


def test_a_mongo_backup_without_mongo_url_fails_cleanly(settings):
    settings.MONGO_URL = None
    backup = create_backup(BackupKind.MONGO)
    assert backup.status == BackupStatus.FAILED and "MONGO_URL" in backup.error


def _snapshot(database) -> dict[str, list[dict]]:
    return {name: sorted(database[name].find(), key=lambda doc: str(doc["_id"])) for name in ("request_logs", "task_logs", "audit_logs")}


def test_the_pymongo_fallback_is_recorded_and_restores_a_dropped_store(mongo_log_store, settings):
    """MongoDB stand-in: nx-27017. AION_MONGODUMP names no real binary, so the fallback runs even where mongodump is installed."""
    settings.AION_MONGODUMP = "aion-test-no-such-mongodump"
    database = mongo_database()
    now = timezone.now()
    database["request_logs"].insert_many([{"created_at": now, "path": f"/v1/p/{i}", "status": 200 + i, "tags": ["a", i]} for i in range(4)])
    database["task_logs"].insert_one({"created_at": now, "task": "ops.nightly_backup", "state": "SUCCESS", "runtime_ms": 12.5})
    database["audit_logs"].insert_one({"created_at": now, "action": "ops.backup.succeeded", "after": {"kind": "mongo", "n": 3}})
    before = _snapshot(database)

    backup = create_backup(BackupKind.MONGO)
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    assert (backup.method, backup.tool) == ("pymongo-export", f"pymongo {pymongo.version}")
    assert backup.key.endswith(".jsonl.gz")

    for name in before:
        database.drop_collection(name)
    assert all(database[name].count_documents({}) == 0 for name in before)
    # The documented restore (docs/operations.md): into the configured MONGO_DATABASE.
    call_command("restore", backup.key, "--yes")
    assert _snapshot(database) == before
