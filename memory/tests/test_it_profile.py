"""POST /v1/memory/profile: create or update by name, versions, field errors, authorisation."""

from __future__ import annotations

import pytest
from django.test import override_settings

from aion.models import AuditRecord
from memory.models import MemoryProfile, Upload

pytestmark = pytest.mark.django_db
URL = "/v1/memory/profile"


def test_create_then_update_by_name_bumps_the_version_and_uploads_keep_theirs(personas, post, ingest):
    created = post(personas.writer, URL, {"name": "docs", "chunk_size": 800, "retention_days": 30, "description": "Team docs"})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["version"] == 1
    assert body["chunk_overlap"] == 100  # chunk_size / 8 by default
    assert body["pipeline"] == ["extract", "chunk", "embed", "store"]
    assert body["embedding_model"] == "hash-384"

    upload_id = ingest(personas.writer, data=b"a", chunk_index=0, total_chunks=2, profile="docs").json()["upload_id"]

    updated = post(personas.writer, URL, {"name": "docs", "chunk_size": 2000, "chunk_overlap": 50})
    assert updated.status_code == 200
    assert updated.json()["version"] == 2
    assert updated.json()["chunk_size"] == 2000

    unchanged = post(personas.writer, URL, {"name": "docs", "chunk_size": 2000, "chunk_overlap": 50})
    assert unchanged.json()["version"] == 2  # no change, no new version

    upload = Upload.objects.get(pk=upload_id)
    assert upload.profile_version == 1
    assert upload.profile_config["chunk_size"] == 800
    assert AuditRecord.objects.filter(action="memory.profile.updated", tenant_id="acme").count() == 1
    assert AuditRecord.objects.filter(action="memory.profile.created", tenant_id="acme").count() == 1


def test_same_name_in_another_tenant_is_a_separate_profile(personas, post):
    post(personas.writer, URL, {"name": "docs"})
    response = post(personas.outsider, URL, {"name": "docs", "chunk_size": 4096})
    assert response.status_code == 201
    assert MemoryProfile.objects.get(tenant_id="acme", name="docs").chunk_size == 1000
    listed = personas.teammate.get(URL).json()["profiles"]
    assert [p["name"] for p in listed] == ["docs"] and listed[0]["chunk_size"] == 1000


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "not a slug!"}, "name"),
        ({"name": "x", "chunk_size": 127}, "chunk_size"),
        ({"name": "x", "chunk_size": 65537}, "chunk_size"),
        ({"name": "x", "chunk_size": 200, "chunk_overlap": 200}, "chunk_overlap"),
        ({"name": "x", "embedding_model": "openai-compatible:not a name!"}, "embedding_model"),
        # A well-formed model this installation cannot load is a 422: test_it_profile_models.py.
        ({"name": "x", "pipeline": ["extract", "compress"]}, "pipeline"),
        ({"name": "x", "pipeline": ["chunk", "extract"]}, "pipeline"),
        ({"name": "x", "pipeline": ["extract", "extract"]}, "pipeline"),
        ({"name": "x", "pipeline": []}, "pipeline"),
        ({"name": "x", "retention_days": 0}, "retention_days"),
        ({"chunk_size": 500}, "name"),
    ],
)
def test_validation_errors_are_field_errors(personas, post, body, field):
    response = post(personas.writer, URL, body)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in response.json()["errors"], response.json()
    assert not MemoryProfile.objects.exists()


@override_settings(AION_EMBEDDINGS_URL="http://127.0.0.1:9/")
def test_openai_compatible_models_are_accepted_when_an_endpoint_is_configured(personas, post):
    response = post(
        personas.writer, URL, {"name": "remote", "embedding_model": "openai-compatible:bge-small", "pipeline": ["extract", "chunk"]}
    )
    assert response.status_code == 201, response.json()
    assert response.json()["pipeline"] == ["extract", "chunk"]


def test_retention_null_means_forever(personas, post):
    post(personas.writer, URL, {"name": "docs", "retention_days": 7})
    assert post(personas.writer, URL, {"name": "docs", "retention_days": None}).json()["retention_days"] is None


def test_authorisation(personas, post):
    assert post(personas.anonymous, URL, {"name": "docs"}).status_code == 401
    assert post(personas.teammate, URL, {"name": "docs"}).status_code == 403  # reader may list, not write
    assert post(personas.no_roles, URL, {"name": "docs"}).status_code == 403
    assert personas.no_roles.get(URL).status_code == 403
    assert personas.anonymous.get(URL).status_code == 401
    assert not MemoryProfile.objects.exists()
