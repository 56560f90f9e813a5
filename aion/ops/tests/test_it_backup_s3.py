"""Backups to S3/MinIO: the bucket ``aion-backups``, ``pg/`` or ``sqlite/`` keys, temp key then copy.

The S3 server is moto's (a stand-in for MinIO/S3, started by aion/testing/s3.py) on 127.0.0.1,
reached through the same django-storages backend production uses.
"""

from __future__ import annotations

import hashlib

import pytest

from aion.ops.choices import BackupStatus
from aion.ops.services import create_backup, database_kind, prune_backups

pytestmark = pytest.mark.django_db


@pytest.fixture()
def bucket(s3_server, settings):
    """MinIO stand-in: moto server."""
    s3_server.create_bucket("aion-backups")
    settings.STORAGES = {**settings.STORAGES, "backups": s3_server.storage_settings("aion-backups")}
    client = s3_server.client()
    for item in client.list_objects_v2(Bucket="aion-backups").get("Contents", []):
        client.delete_object(Bucket="aion-backups", Key=item["Key"])
    return client


def _keys(client) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket="aion-backups").get("Contents", []))


def test_a_backup_lands_complete_under_its_prefix_and_no_temporary_object_remains(bucket):
    backup = create_backup()
    assert backup.status == BackupStatus.SUCCEEDED, backup.error
    prefix = "pg/" if database_kind() == "postgres" else "sqlite/"
    assert _keys(bucket) == [backup.key] and backup.key.startswith(prefix)
    body = bucket.get_object(Bucket="aion-backups", Key=backup.key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == backup.sha256 and len(body) == backup.size_bytes


def test_a_failed_backup_leaves_nothing_in_the_bucket(bucket, settings, tmp_path, monkeypatch):
    """Fault injection mid-stream, as in test_it_backup.py."""
    if database_kind() == "postgres":
        broken = tmp_path / "pg_dump"
        broken.write_text("#!/bin/sh\nprintf 'PGDMP partial'\nexit 1\n")
        broken.chmod(0o755)
        settings.AION_PG_DUMP = str(broken)
    else:
        garbage = tmp_path / "garbage.sqlite3"
        garbage.write_bytes(b"not a database" * 100)
        monkeypatch.setattr("aion.ops.services.sqlite_source_path", lambda: str(garbage))
    backup = create_backup()
    assert backup.status == BackupStatus.FAILED
    assert _keys(bucket) == []


def test_pruning_deletes_the_object_from_the_bucket(bucket, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.AION_BACKUP_RETENTION_DAYS = 1
    old = create_backup(now=timezone.now() - timedelta(days=3))
    assert _keys(bucket) == [old.key]
    assert [b.pk for b in prune_backups()] == [old.pk]
    assert _keys(bucket) == []
