"""GET /v1/memory/status: active and completed uploads, the profile catalog, filters, pagination, authorisation."""

from __future__ import annotations

import hashlib

import pytest

pytestmark = pytest.mark.django_db
URL = "/v1/memory/status"


def test_status_shows_active_and_completed_uploads_and_the_catalog(personas, post, ingest, upload_file, eager_celery):
    post(personas.writer, "/v1/memory/profile", {"name": "docs", "chunk_size": 128})
    active = ingest(personas.writer, data=b"part", chunk_index=2, total_chunks=5, profile="docs", filename="big.txt").json()
    text = b"The quick brown fox jumps over the lazy dog. " * 40
    done = upload_file(personas.writer, text, 500, profile="docs", filename="fox.txt", content_type="text/plain").json()

    body = personas.teammate.get(URL).json()
    assert body["count"] == 2
    assert body["active_uploads"] == 1
    assert [p["name"] for p in body["profiles"]] == ["docs"]
    assert "hash-384" in body["embedding_models"]
    rows = {row["upload_id"]: row for row in body["uploads"]}

    row = rows[active["upload_id"]]
    assert row["state"] == "receiving"
    assert row["missing"] == "0-1,3-4"
    assert row["received_chunks"] == 1 and row["bytes_received"] == 4
    assert row["profile"] == "docs" and row["age_seconds"] >= 0 and row["expires_at"]

    row = rows[done["upload_id"]]
    assert row["state"] == "complete"
    assert row["checksum"] == hashlib.sha256(text).hexdigest()
    assert row["size_bytes"] == len(text)
    assert row["object_key"].startswith(f"documents/acme/{done['upload_id']}/")
    assert row["vector_count"] >= 2
    assert row["profile_version"] == 1


def test_filters_and_pagination(personas, ingest):
    ids = [ingest(personas.writer, data=b"x", chunk_index=0, total_chunks=2).json()["upload_id"] for _ in range(3)]
    only = personas.teammate.get(URL, {"upload_id": ids[1]}).json()
    assert [u["upload_id"] for u in only["uploads"]] == [ids[1]]
    assert personas.teammate.get(URL, {"state": "complete"}).json()["count"] == 0
    assert personas.teammate.get(URL, {"state": "receiving,failed"}).json()["count"] == 3
    page = personas.teammate.get(URL, {"limit": 2}).json()
    assert len(page["uploads"]) == 2 and page["next"]
    assert len(personas.teammate.get(URL, {"limit": 2, "offset": 2}).json()["uploads"]) == 1
    bad = personas.teammate.get(URL, {"state": "sleeping"})
    assert bad.status_code == 400 and "state" in bad.json()["errors"]
    assert personas.teammate.get(URL, {"upload_id": "nope"}).status_code == 400


def test_tenants_see_only_their_uploads_and_roles_are_enforced(personas, ingest):
    ingest(personas.writer, data=b"x", chunk_index=0, total_chunks=2)
    outsider = personas.outsider.get(URL).json()
    assert outsider["count"] == 0 and outsider["uploads"] == []
    assert personas.anonymous.get(URL).status_code == 401
    assert personas.no_roles.get(URL).status_code == 403
