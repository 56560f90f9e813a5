"""MongoDB log store backup: mongodump when installed, else a pymongo export under ``mongo/``; restore.

MongoDB here is nx-27017, a MongoDB wire-protocol server stored on SQLite: a stand-in
for MongoDB (aion/testing/mongo.py). mongodump is not installed on this machine, so
the pymongo-export path runs; the test says which one it exercised.
"""

from __future__ import annotations

import shutil

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
