"""POST /v1/memory/ingest: resumable chunks, every error row of the issue, and authorisation."""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from django.test import override_settings

from aion.testing.chunks import b64, sha, split
from memory.models import Upload, UploadChunk

pytestmark = pytest.mark.django_db

URL = "/v1/memory/ingest"


def test_resume_after_interruption_out_of_order_with_resends(personas, ingest, eager_celery):
    words = ["alpha", "beta", "gamma", "delta", "memory", "vector", "chunk"]
    rng = random.Random(3)
    original = " ".join(rng.choice(words) for _ in range(2000)).encode()[: 10 * 1000 + 123]
    chunks = split(original, 1000)  # 11 chunks
    order = list(range(len(chunks)))
    random.Random(7).shuffle(order)
    first_half, second_half = order[: len(order) // 2], order[len(order) // 2 :]

    first = ingest(personas.writer, data=chunks[first_half[0]], chunk_index=first_half[0], total_chunks=len(chunks), filename="a.txt")
    assert first.status_code == 201
    upload_id = first.json()["upload_id"]
    for index in first_half[1:]:
        assert ingest(personas.writer, data=chunks[index], chunk_index=index, upload_id=upload_id).status_code == 200

    # "Interrupted": the client asks where it stands, then re-sends some stored chunks.
    body = ingest(personas.writer, data=chunks[first_half[0]], chunk_index=first_half[0], upload_id=upload_id).json()
    assert body["chunk"]["status"] == "duplicate"
    assert body["state"] == "receiving"
    assert body["received_chunks"] == len(first_half)
    assert body["bytes_received"] == sum(len(chunks[i]) for i in first_half)
    assert body["percent_complete"] == round(100 * len(first_half) / len(chunks), 1)
    missing = sorted(second_half)
    assert body["missing"] == ",".join(str(i) for i in missing) or _ranges_cover(body["missing"], missing)
    assert body["expires_at"]

    for index in second_half:
        response = ingest(personas.writer, data=chunks[index], chunk_index=index, upload_id=upload_id)
        assert response.status_code == 200

    upload = Upload.objects.get(pk=upload_id)
    assert upload.state == "complete", upload.failure_reason
    assert upload.checksum == hashlib.sha256(original).hexdigest()
    assert upload.size_bytes == len(original)
    # The chunk files are gone once assembled; the object holds the original bytes.
    from django.core.files.storage import storages

    storage = storages["memory"]
    assert not storage.exists(f"chunks/{upload_id}")
    with storage.open(upload.object_key, "rb") as handle:
        assert handle.read() == original
    status = personas.teammate.get(f"/v1/memory/status?upload_id={upload_id}").json()["uploads"][0]
    assert status["checksum"] == upload.checksum
    assert status["size_bytes"] == len(original)


def _ranges_cover(text: str, indices: list[int]) -> bool:
    covered = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        covered.extend(range(int(low), int(high or low) + 1))
    return covered == indices


def test_missing_is_reported_as_compact_ranges(personas, ingest):
    first = ingest(personas.writer, data=b"x", chunk_index=0, total_chunks=12)
    upload_id = first.json()["upload_id"]
    for index in (1, 2, 8, 10):
        body = ingest(personas.writer, data=b"y", chunk_index=index, upload_id=upload_id).json()
    assert body["missing"] == "3-7,9,11"
    assert body["received_chunks"] == 5 and body["total_chunks"] == 12


def test_resend_with_identical_bytes_changes_nothing_and_different_bytes_conflicts(personas, ingest):
    first = ingest(personas.writer, data=b"hello", chunk_index=0, total_chunks=2)
    upload_id = first.json()["upload_id"]
    again = ingest(personas.writer, data=b"hello", chunk_index=0, upload_id=upload_id, total_chunks=2)
    assert again.status_code == 200
    assert again.json()["bytes_received"] == 5
    conflict = ingest(personas.writer, data=b"HELLO", chunk_index=0, upload_id=upload_id)
    assert conflict.status_code == 409
    assert conflict["Content-Type"].startswith("application/problem+json")
    chunk = UploadChunk.objects.get(upload_id=upload_id, index=0)
    assert chunk.sha256 == sha(b"hello")
    from django.core.files.storage import storages

    with storages["memory"].open(chunk.storage_key, "rb") as handle:
        assert handle.read() == b"hello"


def _error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def _assert_untouched(upload_id, chunks=1, bytes_received=5):
    upload = Upload.objects.get(pk=upload_id)
    assert upload.received_chunks == chunks
    assert upload.bytes_received == bytes_received
    assert upload.state == "receiving"


@pytest.fixture()
def started(personas, ingest, post):
    post(personas.writer, "/v1/memory/profile", {"name": "docs"})
    post(personas.writer, "/v1/memory/profile", {"name": "other"})
    response = ingest(personas.writer, data=b"hello", chunk_index=0, total_chunks=3, profile="docs", content_type="text/plain")
    return response.json()["upload_id"]


def test_invalid_base64_is_400(personas, post, started):
    body = _error(post(personas.writer, URL, {"upload_id": started, "chunk_index": 1, "data": "not base64!!"}), 400)
    assert "data" in body["errors"]
    _assert_untouched(started)


def test_sha256_mismatch_is_422(personas, ingest, started):
    _error(ingest(personas.writer, data=b"abc", chunk_index=1, upload_id=started, chunk_sha256=sha(b"abd")), 422)
    _assert_untouched(started)
    assert ingest(personas.writer, data=b"abc", chunk_index=1, upload_id=started, chunk_sha256=sha(b"abc")).status_code == 200


@pytest.mark.parametrize("index", [3, 99])
def test_chunk_index_outside_range_is_400(personas, ingest, started, index):
    _error(ingest(personas.writer, data=b"abc", chunk_index=index, upload_id=started), 400)
    _assert_untouched(started)


def test_negative_index_and_first_chunk_out_of_range_are_400(personas, ingest, post):
    _error(post(personas.writer, URL, {"chunk_index": -1, "total_chunks": 2, "data": b64(b"a")}), 400)
    _error(ingest(personas.writer, data=b"a", chunk_index=2, total_chunks=2), 400)
    assert Upload.objects.count() == 0


@pytest.mark.parametrize("field,value", [("total_chunks", 4), ("profile", "other"), ("content_type", "application/pdf")])
def test_differing_total_profile_or_content_type_is_409(personas, ingest, started, field, value):
    body = _error(ingest(personas.writer, data=b"abc", chunk_index=1, upload_id=started, **{field: value}), 409)
    assert field in body["errors"]
    _assert_untouched(started)


@override_settings(AION_MEMORY_MAX_CHUNK_BYTES=16)
def test_chunk_over_the_limit_is_413(personas, ingest, started):
    _error(ingest(personas.writer, data=b"x" * 17, chunk_index=1, upload_id=started), 413)
    _error(ingest(personas.writer, data=b"x" * 400, chunk_index=1, upload_id=started), 413)  # rejected before decoding
    _assert_untouched(started)


def test_upload_over_the_maximum_is_413(personas, ingest, started):
    with override_settings(AION_MEMORY_MAX_UPLOAD_BYTES=12):
        assert ingest(personas.writer, data=b"1234567", chunk_index=1, upload_id=started).status_code == 200
        _error(ingest(personas.writer, data=b"xx", chunk_index=2, upload_id=started), 413)
        _error(ingest(personas.writer, data=b"x" * 13, chunk_index=0, total_chunks=1), 413)
    _assert_untouched(started, chunks=2, bytes_received=12)


def test_body_over_the_route_limit_is_413_before_parsing(personas):
    from memory.api.views import INGEST_MAX_BODY_BYTES

    response = personas.writer.generic("POST", URL, b"{}", content_type="application/json", CONTENT_LENGTH=str(INGEST_MAX_BODY_BYTES + 1))
    _error(response, 413)


def test_unknown_profile_is_400(personas, ingest):
    body = _error(ingest(personas.writer, data=b"a", chunk_index=0, total_chunks=1, profile="nope"), 400)
    assert "profile" in body["errors"]
    assert Upload.objects.count() == 0


def test_aborted_or_expired_upload_is_410(personas, ingest, started):
    from django.utils import timezone

    Upload.objects.filter(pk=started).update(expires_at=timezone.now())
    _error(ingest(personas.writer, data=b"abc", chunk_index=1, upload_id=started), 410)
    from memory import services

    assert services.abort_stale_uploads() == 1
    body = _error(ingest(personas.writer, data=b"abc", chunk_index=1, upload_id=started), 410)
    assert body["type"].endswith("upload-aborted")


def test_another_tenants_upload_is_404_and_unknown_ids_too(personas, ingest, started):
    _error(ingest(personas.outsider, data=b"abc", chunk_index=1, upload_id=started), 404)
    _error(ingest(personas.writer, data=b"abc", chunk_index=1, upload_id="00000000-0000-4000-8000-000000000000"), 404)
    _assert_untouched(started)


def test_without_credentials_401_and_without_the_writer_role_403(personas, ingest):
    _error(ingest(personas.anonymous, data=b"a", chunk_index=0, total_chunks=1), 401)
    _error(ingest(personas.teammate, data=b"a", chunk_index=0, total_chunks=1), 403)
    _error(ingest(personas.no_roles, data=b"a", chunk_index=0, total_chunks=1), 403)
    assert Upload.objects.count() == 0


def test_first_chunk_without_a_profile_uses_the_default_profile(personas, ingest):
    body = ingest(personas.writer, data=b"a", chunk_index=0, total_chunks=2).json()
    assert body["profile"] == "default"
    assert body["profile_version"] == 1


def test_garbage_fields_are_field_errors(personas, post):
    body = _error(post(personas.writer, URL, {"chunk_index": "x", "data": 12, "upload_id": {"x": 1}, "metadata": []}), 400)
    assert {"chunk_index", "upload_id", "metadata"} <= set(body["errors"])


def test_a_failed_storage_write_is_503_releases_the_claim_and_the_resend_succeeds(personas, ingest, started):
    import shutil

    from django.core.files.storage import storages

    folder = storages["memory"].path(f"chunks/{started}")
    shutil.rmtree(folder)
    with open(folder, "w") as blocker:  # a file where the chunk folder should be: the write fails
        blocker.write("x")
    body = _error(ingest(personas.writer, data=b"abc", chunk_index=1, upload_id=started), 503)
    assert body["upload_id"] == started
    assert not UploadChunk.objects.filter(upload_id=started, index=1).exists()
    os.unlink(folder)
    assert ingest(personas.writer, data=b"abc", chunk_index=1, upload_id=started).status_code == 200
    assert Upload.objects.get(pk=started).received_chunks == 2
