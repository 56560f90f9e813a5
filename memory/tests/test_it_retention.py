"""Retention (documents older than the profile's retention_days) and the 72 h abort of incomplete uploads."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.storage import storages
from django.test import override_settings
from django.utils import timezone

from aion.jobs import REGISTRY
from aion.models import AuditRecord
from memory import services, vectors
from memory.models import Upload, UploadChunk

pytestmark = pytest.mark.django_db
TEXT = b"Retention deletes the object, the vectors and the rows. " * 20


def _complete(personas, upload_file, profile):
    body = upload_file(personas.writer, TEXT, 400, profile=profile, content_type="text/plain").json()
    upload = Upload.objects.get(pk=body["upload_id"])
    assert upload.state == "complete"
    return upload


def test_retention_deletes_object_vectors_and_rows_of_expired_documents_only(personas, post, upload_file, eager_celery):
    post(personas.writer, "/v1/memory/profile", {"name": "short", "retention_days": 30})
    post(personas.writer, "/v1/memory/profile", {"name": "forever"})
    short = _complete(personas, upload_file, "short")
    kept = _complete(personas, upload_file, "forever")
    storage = storages["memory"]
    assert storage.exists(short.object_key) and vectors.count_upload_vectors(short.collection, short.id) > 0

    now = timezone.now()
    assert services.apply_retention(now=now + timedelta(days=29)) == 0
    assert services.apply_retention(now=now + timedelta(days=31)) == 1

    assert not Upload.objects.filter(pk=short.id).exists()
    assert not UploadChunk.objects.filter(upload_id=short.id).exists()
    assert not storage.exists(short.object_key)
    assert vectors.count_upload_vectors(short.collection, short.id) == 0
    audit = AuditRecord.objects.get(action="memory.upload.deleted", resource_id=str(short.id))
    assert audit.tenant_id == "acme" and "30 days" in audit.metadata["reason"]
    assert audit.before["checksum"] == short.checksum
    # The forever profile's document is untouched.
    assert Upload.objects.filter(pk=kept.id).exists() and storage.exists(kept.object_key)
    assert vectors.count_upload_vectors(kept.collection, kept.id) == kept.vector_count


def test_retention_beat_job_is_registered_and_uses_the_current_time(personas, post, upload_file, eager_celery):
    post(personas.writer, "/v1/memory/profile", {"name": "week", "retention_days": 7})
    upload = _complete(personas, upload_file, "week")
    from memory.tasks import apply_retention

    assert "memory.apply_retention" in REGISTRY and apply_retention.name == "memory.apply_retention"
    later = timezone.now() + timedelta(days=8)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert apply_retention() == 1
    assert not Upload.objects.filter(pk=upload.id).exists()


def test_incomplete_uploads_are_aborted_after_72_hours_and_their_chunks_removed(personas, ingest):
    upload_id = ingest(personas.writer, data=b"one", chunk_index=0, total_chunks=3).json()["upload_id"]
    ingest(personas.writer, data=b"two", chunk_index=1, upload_id=upload_id)
    chunk_keys = list(UploadChunk.objects.filter(upload_id=upload_id).values_list("storage_key", flat=True))
    storage = storages["memory"]
    assert all(storage.exists(key) for key in chunk_keys)
    started = Upload.objects.get(pk=upload_id).created_at

    assert services.abort_stale_uploads(now=started + timedelta(hours=71)) == 0
    assert services.abort_stale_uploads(now=started + timedelta(hours=72, seconds=1)) == 1

    upload = Upload.objects.get(pk=upload_id)
    assert upload.state == "aborted" and upload.aborted_at
    assert not any(storage.exists(key) for key in chunk_keys)
    assert AuditRecord.objects.filter(action="memory.upload.aborted", resource_id=upload_id).exists()
    gone = ingest(personas.writer, data=b"three", chunk_index=2, upload_id=upload_id)
    assert gone.status_code == 410
    # A second sweep has nothing left to do.
    assert services.abort_stale_uploads(now=started + timedelta(hours=100)) == 0


@override_settings(AION_MEMORY_UPLOAD_TTL_HOURS=2)
def test_the_abort_age_is_configurable(personas, ingest):
    body = ingest(personas.writer, data=b"one", chunk_index=0, total_chunks=2).json()
    upload = Upload.objects.get(pk=body["upload_id"])
    assert upload.expires_at - upload.created_at == timedelta(hours=2)
    from memory.tasks import abort_stale_uploads

    assert "memory.abort_stale_uploads" in REGISTRY
    with mock.patch("django.utils.timezone.now", return_value=upload.created_at + timedelta(hours=3)):
        assert abort_stale_uploads() == 1


def test_complete_uploads_are_never_aborted(personas, upload_file, eager_celery):
    body = upload_file(personas.writer, TEXT, 400, content_type="text/plain").json()
    assert services.abort_stale_uploads(now=timezone.now() + timedelta(days=30)) == 0
    assert Upload.objects.get(pk=body["upload_id"]).state == "complete"
