"""The Console Memory page: uploads with progress and missing chunks, checksum and size, profiles, search."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from memory.models import MemoryProfile

pytestmark = pytest.mark.django_db
URL = "/console/memory/"


def console(username, roles, tenant="acme"):
    client = Client()
    client.force_login(make_user(username, roles, tenant))
    return client


def test_page_shows_progress_missing_chunks_checksum_profiles_and_search(personas, post, ingest, upload_file, eager_celery):
    post(personas.writer, "/v1/memory/profile", {"name": "docs", "chunk_size": 256, "description": "Team docs"})
    ingest(personas.writer, data=b"x", chunk_index=1, total_chunks=4, profile="docs", filename="half.txt")
    text = b"Console pages show the checksum of completed uploads. " * 10
    upload_file(personas.writer, text, 200, profile="docs", filename="done.txt", content_type="text/plain")

    page = console("reader", [Role.MEMORY_READER]).get(URL, {"q": "checksum of completed uploads", "profile": "docs"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="progress"' in html and "width: 25%" in html
    assert "0,2-3" in html  # missing chunks of the half-sent upload
    assert hashlib.sha256(text).hexdigest() in html
    assert f"({len(text)} bytes)" in html
    assert "Team docs" in html
    assert 'id="search-hits"' in html and "done.txt" in html
    assert "Save profile" not in html  # a reader cannot edit profiles


def test_writer_creates_and_edits_profiles_from_the_console():
    writer = console("writer", [Role.MEMORY_WRITER, Role.MEMORY_READER])
    response = writer.post(
        "/console/memory/profiles/save", {"name": "kb", "chunk_size": "512", "pipeline": ["extract", "chunk", "embed", "store"]}
    )
    assert response.status_code == 302
    profile = MemoryProfile.objects.get(tenant_id="acme", name="kb")
    assert profile.chunk_size == 512 and profile.chunk_overlap == 64
    writer.post(
        "/console/memory/profiles/save", {"name": "kb", "chunk_size": "1024", "retention_days": "10", "pipeline": ["extract", "chunk"]}
    )
    profile.refresh_from_db()
    assert (profile.version, profile.chunk_size, profile.retention_days, profile.pipeline) == (2, 1024, 10, ["extract", "chunk"])
    page = writer.get(URL, {"edit": "kb"}).content.decode()
    assert "Edit kb" in page and "Save profile" in page
    bad = writer.post("/console/memory/profiles/save", {"name": "kb", "chunk_size": "5"}, follow=True)
    assert "chunk_size" in bad.content.decode()
    assert MemoryProfile.objects.get(name="kb").chunk_size == 1024


def test_console_authorisation(personas, ingest):
    assert Client().get(URL).status_code == 302  # to the login page
    assert console("nobody", []).get(URL).status_code == 403
    reader = console("reader", [Role.MEMORY_READER])
    assert reader.post("/console/memory/profiles/save", {"name": "kb"}).status_code == 403
    assert not MemoryProfile.objects.filter(name="kb").exists()
    ingest(personas.writer, data=b"x", chunk_index=0, total_chunks=2, filename="acme-secret.txt")
    outsider = console("outsider", [Role.MEMORY_READER], OTHER_TENANT)
    assert "acme-secret.txt" not in outsider.get(URL).content.decode()
