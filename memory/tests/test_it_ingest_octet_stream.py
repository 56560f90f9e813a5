"""POST /v1/memory/ingest with ``application/octet-stream`` bodies: the chunk's bytes, fields in the query string.

Also what makes a chunk cheap and safe whichever the form: the ASGI body stays in memory, a
middle chunk costs a fixed number of memory-table statements, and an acknowledged chunk was
fsynced (file and folder) before the answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from aion.testing.chunks import b64, sha, split
from memory.models import Upload, UploadChunk

pytestmark = pytest.mark.django_db

URL = "/v1/memory/ingest"


@pytest.fixture()
def send_raw(django_capture_on_commit_callbacks):
    """send_raw(client, data, chunk_index=..., **query) -> response; ``digest=`` sets X-Chunk-Sha256."""

    def call(client, data: bytes, *, digest: str = "", content_type: str = "application/octet-stream", **query):
        headers = {"HTTP_X_CHUNK_SHA256": digest} if digest else {}
        with django_capture_on_commit_callbacks(execute=True):
            return client.generic("POST", f"{URL}?{urlencode(query)}", data, content_type=content_type, **headers)

    return call


def _error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def test_an_upload_in_octet_stream_chunks_resumes_out_of_order_and_assembles(personas, send_raw, eager_celery):
    original = os.urandom(10 * 1000 + 77)
    chunks = split(original, 1000)
    order = list(range(len(chunks)))
    random.Random(5).shuffle(order)
    first = send_raw(
        personas.writer,
        chunks[order[0]],
        chunk_index=order[0],
        total_chunks=len(chunks),
        filename="blob.bin",
        content_type="application/octet-stream",
        metadata=json.dumps({"source": "raw"}),
        digest=sha(chunks[order[0]]),
    )
    assert first.status_code == 201, first.content
    upload_id = first.json()["upload_id"]
    assert first.json()["metadata"] == {"source": "raw"}
    for index in order[1:5]:
        assert send_raw(personas.writer, chunks[index], chunk_index=index, upload_id=upload_id).status_code == 200
    resend = send_raw(personas.writer, chunks[order[1]], chunk_index=order[1], upload_id=upload_id, digest=sha(chunks[order[1]]))
    assert resend.json()["chunk"]["status"] == "duplicate"
    assert resend.json()["received_chunks"] == 5
    for index in order[5:]:
        assert send_raw(personas.writer, chunks[index], chunk_index=index, upload_id=upload_id).status_code == 200

    upload = Upload.objects.get(pk=upload_id)
    assert upload.size_bytes == len(original)
    assert upload.checksum == hashlib.sha256(original).hexdigest()
    assert upload.bytes_received == len(original) and upload.received_chunks == len(chunks)


def test_octet_stream_and_json_chunks_mix_in_one_upload(personas, send_raw, ingest):
    first = ingest(personas.writer, data=b"hello ", chunk_index=0, total_chunks=3)
    upload_id = first.json()["upload_id"]
    assert send_raw(personas.writer, b"raw ", chunk_index=1, upload_id=upload_id).status_code == 200
    # The same bytes in the other form are a duplicate, different bytes a conflict.
    assert ingest(personas.writer, data=b"raw ", chunk_index=1, upload_id=upload_id).json()["chunk"]["status"] == "duplicate"
    _error(send_raw(personas.writer, b"HELLO ", chunk_index=0, upload_id=upload_id), 409)
    assert UploadChunk.objects.get(upload_id=upload_id, index=0).sha256 == sha(b"hello ")


def test_an_empty_octet_stream_chunk_is_a_zero_byte_chunk(personas, send_raw):
    body = send_raw(personas.writer, b"", chunk_index=0, total_chunks=2).json()
    assert body["received_chunks"] == 1 and body["bytes_received"] == 0


def test_a_wrong_digest_header_is_422_and_nothing_is_stored(personas, send_raw):
    _error(send_raw(personas.writer, b"abc", chunk_index=0, total_chunks=1, digest=sha(b"abd")), 422)
    assert Upload.objects.count() == 0


def test_digest_header_and_query_that_differ_are_400(personas, send_raw):
    body = _error(send_raw(personas.writer, b"abc", chunk_index=0, total_chunks=1, digest=sha(b"abc"), chunk_sha256=sha(b"x")), 400)
    assert "chunk_sha256" in body["errors"]


@pytest.mark.parametrize(
    "query,field",
    [
        ({"total_chunks": 1}, "chunk_index"),
        ({"chunk_index": "x", "total_chunks": 1}, "chunk_index"),
        ({"chunk_index": 0, "total_chunks": 1, "metadata": "{not json"}, "metadata"),
        ({"chunk_index": 0, "total_chunks": 1, "metadata": "[1]"}, "metadata"),
        ({"chunk_index": 0, "upload_id": "nope"}, "upload_id"),
    ],
)
def test_bad_query_fields_are_400_field_errors(personas, send_raw, query, field):
    body = _error(send_raw(personas.writer, b"abc", **query), 400)
    assert field in body["errors"]
    assert Upload.objects.count() == 0


@override_settings(AION_MEMORY_MAX_CHUNK_BYTES=16)
def test_an_octet_stream_chunk_over_the_limit_is_413(personas, send_raw):
    body = _error(send_raw(personas.writer, b"x" * 17, chunk_index=0, total_chunks=1), 413)
    assert body["type"].endswith("chunk-too-large")
    assert send_raw(personas.writer, b"x" * 16, chunk_index=0, total_chunks=1).status_code == 201


def test_other_content_types_are_415(personas, send_raw):
    _error(send_raw(personas.writer, b"abc", chunk_index=0, total_chunks=1, content_type="text/plain"), 415)


def test_the_octet_stream_form_needs_the_writer_role(personas, send_raw):
    _error(send_raw(personas.anonymous, b"a", chunk_index=0, total_chunks=1), 401)
    _error(send_raw(personas.teammate, b"a", chunk_index=0, total_chunks=1), 403)
    assert Upload.objects.count() == 0


def test_base64_with_padding_past_a_full_group_is_400(personas, post):
    # binascii's strict mode accepted "YWJj=" as "abc"; the documented rule (padding only where needed) refuses it.
    body = _error(post(personas.writer, URL, {"chunk_index": 0, "total_chunks": 1, "data": "YWJj="}), 400)
    assert body["type"].endswith("invalid-base64")
    assert post(personas.writer, URL, {"chunk_index": 0, "total_chunks": 1, "data": b64(b"abc")}).status_code == 201


def test_json_bodies_that_are_not_utf8_or_use_nan_are_400(personas):
    for raw in (b'{"chunk_index": 0, "data": "\xff"}', b'{"chunk_index": NaN, "data": ""}', b'{"chunk_index": 1e999}', b"{", b"[1,]"):
        _error(personas.writer.generic("POST", URL, raw, content_type="application/json"), 400)


def test_an_ingest_body_is_kept_in_memory_under_asgi():
    """Django's ASGI handler spools bodies past FILE_UPLOAD_MAX_MEMORY_SIZE to disk, on the event loop."""
    from django.conf import settings

    from memory.api.views import INGEST_MAX_BODY_BYTES

    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE >= INGEST_MAX_BODY_BYTES


def _memory_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if "memory_upload" in q["sql"]]


@pytest.mark.parametrize("form", ["json", "octet-stream"])
def test_a_middle_chunk_costs_a_fixed_number_of_statements(personas, ingest, send_raw, form):
    first = ingest(personas.writer, data=b"a", chunk_index=0, total_chunks=40)
    upload_id = first.json()["upload_id"]
    for index in range(1, 30):
        ingest(personas.writer, data=b"b", chunk_index=index, upload_id=upload_id)
    with CaptureQueriesContext(connection) as queries:
        if form == "json":
            response = ingest(personas.writer, data=b"c", chunk_index=30, upload_id=upload_id)
        else:
            response = send_raw(personas.writer, b"c", chunk_index=30, upload_id=upload_id)
    assert response.json()["received_chunks"] == 31
    statements = _memory_statements(queries.captured_queries)
    # claim: lock, look up the index, claimed bytes, insert; receipt: lock, mark stored, counters; answer: missing
    assert len(statements) <= 8, "\n".join(statements)
    assert not [s for s in statements if "COUNT(" in s.upper()], "the counters are incremented, not recounted"


def test_an_acknowledged_chunk_was_fsynced_file_and_folder(personas, ingest, monkeypatch):
    """os.fsync is wrapped (the real call still runs) to see which files and folders were flushed before the answer."""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    response = ingest(personas.writer, data=b"durable", chunk_index=0, total_chunks=2)
    assert response.status_code == 201
    chunk = UploadChunk.objects.get(upload_id=response.json()["upload_id"], index=0)
    from django.core.files.storage import storages

    path = storages["memory"].path(chunk.storage_key)
    assert any(name.startswith(path + ".") and name.endswith(".part") for name in synced), synced  # the data, before the rename
    assert os.path.dirname(path) in synced  # the rename itself
