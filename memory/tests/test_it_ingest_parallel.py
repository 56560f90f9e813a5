"""Parallel chunk uploads from several threads (real concurrency: PostgreSQL only)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from aion.roles import Role
from aion.testing.chunks import b64, split
from aion.testing.factories import api_client, make_api_key
from memory.models import Upload, UploadChunk
from memory.services import save_profile

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_chunks_from_parallel_clients_assemble_into_the_original(require_postgres, eager_celery):
    raw, _ = make_api_key([Role.MEMORY_WRITER, Role.MEMORY_READER])
    # Parsing only: this test is about concurrent chunk storage and assembly, not embedding speed.
    save_profile("acme", "parse", {"pipeline": ["extract", "chunk"]}, actor=None)
    original = b"".join(f"line {i}: parallel chunk uploads stay consistent.\n".encode() for i in range(20000))
    chunks = split(original, 64 * 1024)
    first = api_client(raw).post(
        "/v1/memory/ingest",
        {"chunk_index": 0, "total_chunks": len(chunks), "data": b64(chunks[0]), "content_type": "text/plain", "profile": "parse"},
        format="json",
    )
    assert first.status_code == 201
    upload_id = first.json()["upload_id"]

    def send(index: int) -> list[int]:
        client = api_client(raw)  # one client per thread, like separate uploaders
        try:
            statuses = []
            # Each chunk twice (a resend racing the original) plus a conflicting resend of chunk 1.
            for _ in range(2):
                response = client.post(
                    "/v1/memory/ingest", {"upload_id": upload_id, "chunk_index": index, "data": b64(chunks[index])}, format="json"
                )
                statuses.append(response.status_code)
            return statuses
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(1, len(chunks))))
    assert all(status == 200 for statuses in results for status in statuses), results

    upload = Upload.objects.get(pk=upload_id)
    assert UploadChunk.objects.filter(upload=upload).count() == len(chunks)
    assert upload.received_chunks == len(chunks)
    # The last stored chunk triggered the assembly exactly once (eager Celery, committed transactions).
    assert upload.state == "complete", (upload.step, upload.failure_reason)
    assert upload.checksum == hashlib.sha256(original).hexdigest()
    assert upload.size_bytes == len(original)


def test_conflicting_parallel_resends_keep_the_first_stored_bytes(require_postgres):
    raw, _ = make_api_key([Role.MEMORY_WRITER])
    first = api_client(raw).post("/v1/memory/ingest", {"chunk_index": 0, "total_chunks": 3, "data": b64(b"a")}, format="json")
    upload_id = first.json()["upload_id"]
    variants = [os.urandom(32) for _ in range(8)]

    def send(data: bytes) -> int:
        try:
            return (
                api_client(raw)
                .post("/v1/memory/ingest", {"upload_id": upload_id, "chunk_index": 1, "data": b64(data)}, format="json")
                .status_code
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, variants))
    assert sorted(statuses) == [200] + [409] * 7
    chunk = UploadChunk.objects.get(upload_id=upload_id, index=1)
    assert chunk.stored and chunk.sha256 in {hashlib.sha256(v).hexdigest() for v in variants}
    from django.core.files.storage import storages

    with storages["memory"].open(chunk.storage_key, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == chunk.sha256


def test_parallel_mixed_size_chunks_assemble_on_s3(require_postgres, eager_celery, s3_memory):
    """Threads race on which large chunks may go straight to S3 as parts; the assembly is valid anyway (moto server)."""
    s3, bucket = s3_memory
    raw, _ = make_api_key([Role.MEMORY_WRITER])
    mib = 1024 * 1024
    sizes = [5 * mib, 5 * mib, 1 * mib, 6 * mib, 5 * mib, 200 * 1024, 5 * mib, 3 * mib, 5 * mib, 10]
    chunks = [os.urandom(size) for size in sizes]
    original = b"".join(chunks)
    first = api_client(raw).post(
        "/v1/memory/ingest",
        {"chunk_index": 0, "total_chunks": len(chunks), "data": b64(chunks[0]), "content_type": "application/zip"},
        format="json",
    )
    assert first.status_code == 201
    upload_id = first.json()["upload_id"]

    def send(index: int) -> int:
        try:
            return (
                api_client(raw)
                .post("/v1/memory/ingest", {"upload_id": upload_id, "chunk_index": index, "data": b64(chunks[index])}, format="json")
                .status_code
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(send, range(1, len(chunks)))) == {200}
    upload = Upload.objects.get(pk=upload_id)
    assert upload.assembled_at is not None and upload.step != "assemble", (upload.state, upload.step, upload.failure_reason)
    assert (upload.checksum, upload.size_bytes) == (hashlib.sha256(original).hexdigest(), len(original))
    assert s3.get_object(Bucket=bucket, Key=upload.object_key)["Body"].read() == original
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
