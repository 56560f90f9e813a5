"""POST /v1/memory/search ``min_score``: an unrelated query finds nothing instead of hits at score 0.0.

The scores quoted below are the deterministic hash-384 cosines of these texts (the embedded default model).
"""

from __future__ import annotations

import pytest
from django.test import Client

from memory.models import Upload
from memory.services import DEFAULT_MIN_SCORE

pytestmark = pytest.mark.django_db
URL = "/v1/memory/search"

GARDEN = "Tomatoes need full sun and regular watering. Prune the side shoots of tomato plants every week."
TRAIN = "The night train to Vienna leaves from platform nine; book a sleeper cabin early."
UNRELATED = "piano concert tickets"  # shares no word or word pair with either text: 0.0 against both
RELATED = "prune tomato plants"  # 0.32 against GARDEN, 0.0 against TRAIN


def _store(personas, upload_file, text):
    body = upload_file(personas.writer, text.encode(), 4096, profile="notes", content_type="text/plain").json()
    upload = Upload.objects.get(pk=body["upload_id"])
    assert upload.state == "complete", upload.failure_reason
    return upload


@pytest.fixture()
def indexed(personas, post, upload_file, eager_celery):
    post(personas.writer, "/v1/memory/profile", {"name": "notes", "chunk_size": 256})
    return _store(personas, upload_file, GARDEN), _store(personas, upload_file, TRAIN)


def _hits(personas, post, query, **fields):
    response = post(personas.teammate, URL, {"profile": "notes", "query": query, **fields})
    assert response.status_code == 200, response.json()
    return response.json()["hits"]


def test_an_unrelated_query_finds_nothing_and_a_related_one_finds_its_document(personas, post, indexed):
    garden, _ = indexed
    assert _hits(personas, post, UNRELATED) == []
    hits = _hits(personas, post, RELATED)
    assert [hit["upload_id"] for hit in hits] == [str(garden.id)]  # TRAIN scores 0.0: dropped too
    assert hits[0]["score"] >= DEFAULT_MIN_SCORE


def test_min_score_zero_or_below_returns_the_old_hits_at_score_zero(personas, post, indexed):
    old = _hits(personas, post, UNRELATED, min_score=0)
    assert len(old) == 2 and {hit["score"] for hit in old} == {0.0}
    assert _hits(personas, post, UNRELATED, min_score=-1) == old
    # Cosines can be negative ("quarterly tax return deadline" is -0.07 against GARDEN): only -1 keeps every hit.
    assert len(_hits(personas, post, "quarterly tax return deadline", min_score=-1)) == 2
    assert len(_hits(personas, post, "quarterly tax return deadline", min_score=0)) == 1


def test_a_higher_min_score_keeps_only_closer_hits(personas, post, indexed):
    garden, _ = indexed
    assert [hit["upload_id"] for hit in _hits(personas, post, RELATED, min_score=0.3)] == [str(garden.id)]
    assert _hits(personas, post, RELATED, min_score=0.4) == []
    assert _hits(personas, post, RELATED, min_score=1) == []


@pytest.mark.parametrize("value", [1.5, -1.01, "high", "nan", None, [0.1]])
def test_a_bad_min_score_is_a_400_naming_the_field(personas, post, indexed, value):
    response = post(personas.teammate, URL, {"profile": "notes", "query": RELATED, "min_score": value})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert "min_score" in response.json()["errors"], response.json()


def test_authorisation_and_tenancy(personas, post, indexed):
    assert post(personas.anonymous, URL, {"profile": "notes", "query": RELATED, "min_score": 0}).status_code == 401
    assert post(personas.no_roles, URL, {"profile": "notes", "query": RELATED, "min_score": 0}).status_code == 403
    post(personas.outsider, "/v1/memory/profile", {"name": "notes"})
    assert post(personas.outsider, URL, {"profile": "notes", "query": RELATED, "min_score": -1}).json()["hits"] == []


def test_the_openapi_schema_documents_min_score():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    request = schema["paths"]["/v1/memory/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    fields = schema["components"]["schemas"][request["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert fields["min_score"]["default"] == DEFAULT_MIN_SCORE
    assert (fields["min_score"]["minimum"], fields["min_score"]["maximum"]) == (-1, 1)
    assert "min_score" in fields and "docs/memory.md" in fields["min_score"]["description"]
