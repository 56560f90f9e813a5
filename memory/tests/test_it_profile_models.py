"""POST /v1/memory/profile refuses, with a 422 naming the available models, a model this installation cannot load.

"Can load" means the code is here (the MiniLM extras are importable, an endpoint is configured for
openai-compatible models); nothing is downloaded or called at request time.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from aion.roles import Role
from aion.testing.factories import make_user
from memory import embeddings
from memory.models import MemoryProfile

pytestmark = pytest.mark.django_db
URL = "/v1/memory/profile"
NEVER_AVAILABLE = "no-such-model-v0"  # never registered, whatever extras the venv has


def _assert_unavailable(response, model):
    assert response.status_code == 422, response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith(":embedding-model-unavailable")
    assert body["available_models"] == embeddings.available_models()
    assert "hash-384" in body["available_models"]
    assert model in body["detail"] and "hash-384" in body["detail"]
    assert "hash-384" in body["errors"]["embedding_model"][0]
    return body


def test_a_model_no_installation_has_is_a_422_naming_the_available_models(personas, post):
    _assert_unavailable(post(personas.writer, URL, {"name": "docs", "embedding_model": NEVER_AVAILABLE}), NEVER_AVAILABLE)
    assert not MemoryProfile.objects.exists()


def test_the_embedded_default_model_is_accepted(personas, post):
    response = post(personas.writer, URL, {"name": "docs", "embedding_model": "hash-384"})
    assert response.status_code == 201, response.json()
    assert response.json()["embedding_model"] == "hash-384"


def test_minilm_is_accepted_exactly_when_its_extras_are_installed(personas, post):
    response = post(personas.writer, URL, {"name": "semantic", "embedding_model": "all-MiniLM-L6-v2"})
    if embeddings.minilm_installed():
        assert response.status_code == 201, response.json()
        assert "all-MiniLM-L6-v2" in embeddings.available_models()
    else:
        body = _assert_unavailable(response, "all-MiniLM-L6-v2")
        assert "all-MiniLM-L6-v2" not in body["available_models"]
        assert "requirements-ci.txt" in body["detail"]


@override_settings(AION_EMBEDDINGS_URL="")
def test_openai_compatible_without_an_endpoint_is_a_422(personas, post):
    body = _assert_unavailable(
        post(personas.writer, URL, {"name": "remote", "embedding_model": "openai-compatible:bge-small"}), "bge-small"
    )
    assert "AION_EMBEDDINGS_URL" in body["detail"]
    assert not any(model.startswith("openai-compatible:") for model in body["available_models"])


def test_an_update_to_an_unloadable_model_leaves_the_profile_as_it_was(personas, post):
    assert post(personas.writer, URL, {"name": "docs"}).status_code == 201
    _assert_unavailable(post(personas.writer, URL, {"name": "docs", "embedding_model": NEVER_AVAILABLE}), NEVER_AVAILABLE)
    profile = MemoryProfile.objects.get(name="docs")
    assert (profile.version, profile.embedding_model) == (1, "hash-384")


def test_the_catalog_lists_what_this_installation_can_load(personas):
    models = personas.teammate.get(URL).json()["embedding_models"]
    assert models == embeddings.available_models()
    assert NEVER_AVAILABLE not in models
    with override_settings(AION_EMBEDDINGS_URL="http://127.0.0.1:9/"):
        assert "openai-compatible:<model>" in personas.teammate.get(URL).json()["embedding_models"]


def test_field_checks_and_authorisation_come_first(personas, post):
    # Malformed fields are still 400s; who may write is checked before any model is looked at.
    bad = post(personas.writer, URL, {"name": "x", "embedding_model": NEVER_AVAILABLE, "chunk_size": 5})
    assert bad.status_code == 400 and "chunk_size" in bad.json()["errors"]
    assert post(personas.teammate, URL, {"name": "docs", "embedding_model": NEVER_AVAILABLE}).status_code == 403
    assert post(personas.anonymous, URL, {"name": "docs", "embedding_model": NEVER_AVAILABLE}).status_code == 401


def test_the_console_shows_the_refusal_instead_of_failing():
    writer = Client()
    writer.force_login(make_user("writer", [Role.MEMORY_WRITER, Role.MEMORY_READER], "acme"))
    page = writer.post("/console/memory/profiles/save", {"name": "kb", "embedding_model": NEVER_AVAILABLE}, follow=True)
    assert page.status_code == 400  # the form again, with what was typed and why it was refused
    assert "cannot load the embedding model" in page.content.decode()
    assert not MemoryProfile.objects.exists()
