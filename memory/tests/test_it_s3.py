"""The S3 multipart path against a real S3-compatible server (moto's ThreadedMotoServer on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from memory import services
from memory.models import Upload
from memory.storage import S3_MIN_PART_BYTES, ChunkRef, S3Backend

pytestmark = pytest.mark.django_db
MiB = 1024 * 1024


def _multipart_uploads(client, bucket):
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _assert_assembled(upload):
    """Assembly succeeded (the binary test data then fails extraction, which is not under test here)."""
    assert upload.assembled_at is not None and upload.step != "assemble", (upload.state, upload.step, upload.failure_reason)
    assert upload.multipart_upload_id == ""


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
    upload_id = ingest(personas.writer, data=os.urandom(S3_MIN_PART_BYTES), chunk_index=0, total_chunks=3).json()["upload_id"]
    ingest(personas.writer, data=b"tiny", chunk_index=1, upload_id=upload_id)
    upload = Upload.objects.get(pk=upload_id)
    assert len(client.list_parts(Bucket=bucket, Key=upload.object_key, UploadId=upload.multipart_upload_id)["Parts"]) == 1
    assert len(_multipart_uploads(client, bucket)) == 1 and len(_keys(client, bucket, "chunks/")) == 1
    from django.utils import timezone

    assert services.abort_stale_uploads(now=timezone.now() + timezone.timedelta(hours=73)) == 1
    assert _multipart_uploads(client, bucket) == []
    assert _keys(client, bucket, "chunks/") == []
    assert Upload.objects.get(pk=upload_id).state == "aborted"


def test_a_short_run_of_small_chunks_before_a_large_chunk_assembles(personas, ingest, s3_memory, eager_celery):
    """Once a failure ("under S3's 5 MiB part minimum"); the large chunk is now buffered and joined."""
    client, bucket = s3_memory
    data = b"head" + os.urandom(S3_MIN_PART_BYTES)
    upload_id = ingest(personas.writer, data=data[:4], chunk_index=0, total_chunks=2, content_type="application/zip").json()["upload_id"]
    ingest(personas.writer, data=data[4:], chunk_index=1, upload_id=upload_id)
    upload = Upload.objects.get(pk=upload_id)
    _assert_assembled(upload)
    assert (upload.checksum, upload.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert client.get_object(Bucket=bucket, Key=upload.object_key)["Body"].read() == data
    assert client.head_object(Bucket=bucket, Key=upload.object_key)["ETag"].strip('"').endswith("-1")  # joined into one part


# Sizes chosen to hit every case: short runs before large chunks, large chunks after large ones,
# chunks exactly at the 5 MiB minimum, tiny chunks between large ones, a tiny last chunk.
MIXED_SIZES = [1 * MiB, 6 * MiB, 2 * MiB, S3_MIN_PART_BYTES, 300 * 1024, 7 * MiB, S3_MIN_PART_BYTES, 1, 3 * MiB, 8 * MiB, 100]


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(list(range(len(MIXED_SIZES))), id="in-order"),
        pytest.param([10, 3, 9, 0, 6, 1, 8, 2, 5, 7, 4], id="shuffled"),
        pytest.param(list(reversed(range(len(MIXED_SIZES)))), id="reversed"),
    ],
)
def test_any_order_and_any_chunk_sizes_assemble_on_s3(personas, ingest, s3_memory, eager_celery, order):
    client, bucket = s3_memory
    rng = random.Random(len(order) + order[0])
    chunks = [rng.randbytes(size) for size in MIXED_SIZES]
    data = b"".join(chunks)
    first, *rest = order
    response = ingest(personas.writer, data=chunks[first], chunk_index=first, total_chunks=len(chunks), content_type="application/zip")
    upload_id = response.json()["upload_id"]
    for index in rest:
        response = ingest(personas.writer, data=chunks[index], chunk_index=index, upload_id=upload_id)
        assert response.status_code == 200, response.json()
    upload = Upload.objects.get(pk=upload_id)
    _assert_assembled(upload)
    assert (upload.checksum, upload.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert client.get_object(Bucket=bucket, Key=upload.object_key)["Body"].read() == data
    assert _multipart_uploads(client, bucket) == []
    assert _keys(client, bucket, "chunks/") == []


def test_in_order_large_chunks_go_straight_to_s3_and_out_of_order_ones_are_copied_server_side(personas, ingest, s3_memory):
    client, bucket = s3_memory
    chunks = [os.urandom(S3_MIN_PART_BYTES) for _ in range(4)] + [b"tail"]
    upload_id = ingest(personas.writer, data=chunks[0], chunk_index=0, total_chunks=5).json()["upload_id"]
    ingest(personas.writer, data=chunks[1], chunk_index=1, upload_id=upload_id)
    ingest(personas.writer, data=chunks[3], chunk_index=3, upload_id=upload_id)  # its predecessor is not there yet
    upload = Upload.objects.get(pk=upload_id)
    parts = client.list_parts(Bucket=bucket, Key=upload.object_key, UploadId=upload.multipart_upload_id).get("Parts", [])
    assert [p["PartNumber"] for p in parts] == [1, 2]
    assert _keys(client, bucket, "chunks/") == [f"chunks/{upload_id}/000003"]
    plan = S3Backend.plan_parts(services._chunk_refs(upload))
    assert [(kind, [c.index for c in members]) for kind, members in plan] == [("direct", [0]), ("direct", [1]), ("copy", [3])]


@given(
    sizes=st.lists(st.sampled_from([0, 1, 1000, MiB, 4 * MiB, S3_MIN_PART_BYTES - 1, S3_MIN_PART_BYTES, 8 * MiB]), min_size=1, max_size=40),
    direct_prefix=st.integers(min_value=0, max_value=40),
)
@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_planned_part_but_the_last_meets_the_5_mib_minimum(sizes, direct_prefix):
    """The assembly plan for any sizes, with direct parts where write_chunk's prefix rule allows them."""
    refs, direct = [], True
    for index, size in enumerate(sizes):
        direct = direct and index < direct_prefix and (size >= S3_MIN_PART_BYTES or index == len(sizes) - 1)
        refs.append(ChunkRef(index, size, "" if direct else f"chunks/x/{index}", "etag" if direct else ""))
    plan = S3Backend.plan_parts(list(reversed(refs)))
    assert [c.index for _, members in plan for c in members] == list(range(len(sizes)))  # every chunk once, in order
    numbers = [members[0].index + 1 for _, members in plan]
    assert numbers == sorted(set(numbers)) and numbers[-1] <= 10_000
    assert all(sum(c.size for c in members) >= S3_MIN_PART_BYTES for _, members in plan[:-1])


def test_retention_and_the_stale_abort_leave_nothing_in_the_bucket(personas, post, upload_file, ingest, s3_memory, eager_celery):
    from datetime import timedelta

    from django.utils import timezone

    client, bucket = s3_memory
    post(personas.writer, "/v1/memory/profile", {"name": "brief", "retention_days": 1})
    text = b"Retention on S3 removes the object. " * 50
    upload = Upload.objects.get(pk=upload_file(personas.writer, text, 500, profile="brief", content_type="text/plain").json()["upload_id"])
    assert upload.state == "complete", upload.failure_reason
    assert _keys(client, bucket, "documents/") == [upload.object_key]
    stale = ingest(personas.writer, data=os.urandom(S3_MIN_PART_BYTES), chunk_index=0, total_chunks=2).json()["upload_id"]

    later = timezone.now() + timedelta(days=4)
    assert services.apply_retention(now=later) == 1
    assert services.abort_stale_uploads(now=later) == 1
    assert not Upload.objects.filter(pk=upload.id).exists() and Upload.objects.get(pk=stale).state == "aborted"
    assert _keys(client, bucket) == [] and _multipart_uploads(client, bucket) == []
