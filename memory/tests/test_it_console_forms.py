"""Console → Memory on Forms and htmx: the profile form keeps input, search validates, the uploads panel polls until settled."""

from __future__ import annotations

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


def test_an_invalid_profile_rerenders_with_what_was_typed():
    writer = console("writer", [Role.MEMORY_WRITER, Role.MEMORY_READER])
    typed = {"name": "kb", "chunk_size": "512", "chunk_overlap": "600", "description": "Team KB", "pipeline": ["extract", "embed"]}
    response = writer.post("/console/memory/profiles/save", typed)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="kb"' in html and 'value="512"' in html and 'value="600"' in html and "Team KB</textarea>" in html
    assert "Steps must run in order" in html
    overlap = writer.post("/console/memory/profiles/save", {**typed, "pipeline": ["extract", "chunk"]}).content.decode()
    assert "Must be smaller than chunk_size." in overlap and 'value="600"' in overlap
    assert not MemoryProfile.objects.exists()
    unloadable = writer.post("/console/memory/profiles/save", {"name": "kb", "chunk_size": "512", "embedding_model": "no/such-model"})
    assert unloadable.status_code == 400 and 'value="no/such-model"' in unloadable.content.decode()
    assert not MemoryProfile.objects.exists()
    ok = writer.post("/console/memory/profiles/save", {"name": "kb", "chunk_size": "512"})
    assert ok.status_code == 302 and MemoryProfile.objects.get().chunk_size == 512


def test_search_form_validates_the_profile_and_keeps_the_query():
    reader = console("reader", [Role.MEMORY_READER])
    html = reader.get(URL, {"q": "where is it", "profile": "nope"}).content.decode()
    assert 'value="where is it"' in html and "Select a valid choice" in html
    assert reader.get(URL, {"edit": "../x"}).status_code == 200  # a bad name to edit: the new-profile form


def test_the_uploads_panel_polls_while_an_upload_moves_and_stops_once_complete(personas, ingest, eager_celery):
    reader = console("reader", [Role.MEMORY_READER])
    assert "hx-trigger" not in reader.get(URL, HTTP_HX_REQUEST="true").content.decode()  # nothing moving: no polling
    first = ingest(personas.writer, data=b"hello ", chunk_index=0, total_chunks=2, filename="two.txt", content_type="text/plain")
    upload_id = first.json()["upload_id"]
    moving = reader.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert moving.lstrip().startswith('<section class="card" id="uploads-panel"') and "<html" not in moving
    assert 'hx-trigger="every 2s"' in moving and f'data-upload="{upload_id}" data-state="receiving"' in moving
    assert 'aria-valuenow="50"' in moving
    ingest(personas.writer, data=b"world", chunk_index=1, upload_id=upload_id)
    settled = reader.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert f'data-upload="{upload_id}" data-state="complete"' in settled and "hx-trigger" not in settled
    filtered = reader.get(URL, {"state": "receiving"}).content.decode()
    assert f'data-upload="{upload_id}"' not in filtered
    assert 'id="filter-errors"' in reader.get(URL, {"state": "bogus"}).content.decode()
    outsider = console("outsider", [Role.MEMORY_READER], OTHER_TENANT)
    assert upload_id not in outsider.get(URL, HTTP_HX_REQUEST="true").content.decode()


def test_negative_authorisation_of_the_profile_form():
    assert console("reader", [Role.MEMORY_READER]).post("/console/memory/profiles/save", {"name": "kb"}).status_code == 403
    assert Client().post("/console/memory/profiles/save", {"name": "kb"}).status_code == 302
    assert not MemoryProfile.objects.exists()
