"""The S3 multipart path against a real S3-compatible server (moto's ThreadedMotoServer on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from django.test import override_settings

from memory import services
from memory.models import Upload
from memory.storage import S3_MIN_PART_BYTES, S3Backend, get_backend

pytestmark = pytest.mark.django_db
MiB = 1024 * 1024


@pytest.fixture()
def s3_memory(s3_server, settings):
    bucket = f"memory-{os.urandom(4).hex()}"
    s3_server.create_bucket(bucket)
    storages = dict(settings.STORAGES)
    storages["memory"] = s3_server.storage_settings(bucket)
    with override_settings(STORAGES=storages):
        assert isinstance(get_backend(), S3Backend)
        yield s3_server.client(), bucket


def _multipart_uploads(client, bucket):
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _keys(client, bucket, prefix=""):
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_large_chunks_are_parts_and_complete_multipart_upload_creates_the_object(personas, ingest, s3_memory, eager_celery):
    client, bucket = s3_memory
    data = os.urandom(2 * S3_MIN_PART_BYTES + 1234)
    chunks = [data[:S3_MIN_PART_BYTES], data[S3_MIN_PART_BYTES : 2 * S3_MIN_PART_BYTES], data[2 * S3_MIN_PART_BYTES :]]
    # Out of order: the last (small) chunk first, then the two 5 MiB parts.
    first = ingest(personas.writer, data=chunks[2], chunk_index=2, total_chunks=3, filename="blob.bin", content_type="application/zip")
    upload_id = first.json()["upload_id"]
    upload = Upload.objects.get(pk=upload_id)
    assert upload.multipart_upload_id
    assert [u["UploadId"] for u in _multipart_uploads(client, bucket)] == [upload.multipart_upload_id]
    ingest(personas.writer, data=chunks[0], chunk_index=0, upload_id=upload_id)
    parts = client.list_parts(Bucket=bucket, Key=upload.object_key, UploadId=upload.multipart_upload_id)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]  # chunk 0 went straight to S3 as part 1
    ingest(personas.writer, data=chunks[1], chunk_index=1, upload_id=upload_id)

    upload.refresh_from_db()
    assert upload.checksum == hashlib.sha256(data).hexdigest()
    assert upload.size_bytes == len(data)
    assert client.get_object(Bucket=bucket, Key=upload.object_key)["Body"].read() == data
    assert _multipart_uploads(client, bucket) == []
    assert _keys(client, bucket, "chunks/") == []  # the buffered small chunk is gone


def test_small_chunks_are_buffered_into_parts_of_at_least_5_mib(personas, post, upload_file, s3_memory, eager_celery):
    client, bucket = s3_memory
    post(personas.writer, "/v1/memory/profile", {"name": "parse", "pipeline": ["extract", "chunk"], "chunk_size": 65536})
    text = (b"Small chunks are buffered until they fill a part. " * 160000)[: 7 * MiB + 77]
    body = upload_file(personas.writer, text, 1 * MiB, profile="parse", filename="notes.txt", content_type="text/plain").json()
    upload = Upload.objects.get(pk=body["upload_id"])
    assert upload.state == "complete", upload.failure_reason
    assert upload.checksum == hashlib.sha256(text).hexdigest()
    assert upload.size_bytes == len(text)
    head = client.head_object(Bucket=bucket, Key=upload.object_key)
    assert head["ContentLength"] == len(text)
    assert head["ETag"].strip('"').endswith("-2")  # two parts: 5 MiB and the remainder
    assert _keys(client, bucket, "chunks/") == []
    assert upload.segment_count > 100  # extracted from the S3 object


def test_aborting_removes_the_multipart_upload_and_buffered_chunks(personas, ingest, s3_memory):
    client, bucket = s3_memory
    upload_id = ingest(personas.writer, data=b"tiny", chunk_index=0, total_chunks=3).json()["upload_id"]
    ingest(personas.writer, data=os.urandom(S3_MIN_PART_BYTES), chunk_index=1, upload_id=upload_id)
    assert len(_multipart_uploads(client, bucket)) == 1 and len(_keys(client, bucket, "chunks/")) == 1
    from django.utils import timezone

    assert services.abort_stale_uploads(now=timezone.now() + timezone.timedelta(hours=73)) == 1
    assert _multipart_uploads(client, bucket) == []
    assert _keys(client, bucket, "chunks/") == []
    assert Upload.objects.get(pk=upload_id).state == "aborted"


def test_lifecycle_json_is_a_valid_s3_lifecycle_document(s3_server):
    """deploy/minio/lifecycle.json applied with boto3 (what `mc ilm import` does against MinIO)."""
    document = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "minio" / "lifecycle.json").read_text())
    client = s3_server.client()
    bucket = f"lifecycle-{os.urandom(4).hex()}"
    s3_server.create_bucket(bucket)
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=document)
    rules = {rule["ID"]: rule for rule in client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert "memory-retention" in rules
    assert rules["memory-retention"]["Status"] == "Enabled"
    aborts = [r for r in rules.values() if "AbortIncompleteMultipartUpload" in r]
    assert aborts and aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 3


def test_a_short_run_of_small_chunks_before_a_direct_part_fails_assembly_with_a_reason(personas, ingest, s3_memory, eager_celery):
    upload_id = ingest(personas.writer, data=b"head", chunk_index=0, total_chunks=2, content_type="text/plain").json()["upload_id"]
    ingest(personas.writer, data=b"x" * S3_MIN_PART_BYTES, chunk_index=1, upload_id=upload_id)
    upload = Upload.objects.get(pk=upload_id)
    assert upload.state == "failed" and upload.step == "assemble"
    assert "5 MiB" in upload.failure_reason
