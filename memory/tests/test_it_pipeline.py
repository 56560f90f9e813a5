"""The pipeline (assemble, extract, chunk, embed, store) into local Qdrant, failures, reprocess and events."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jsonschema
import pytest
from django.test import override_settings

from aion.models import AuditRecord, OutboxEvent
from aion.topics import MEMORY_UPLOADS
from memory import text, vectors
from memory.models import Upload
from memory.tests.pdf import make_pdf

pytestmark = pytest.mark.django_db

ARTICLE = (
    "Qdrant stores vectors for semantic search. Each point carries a payload with the original text.\n\n"
    "Uploads arrive in chunks and are assembled in order. The checksum covers the whole object.\n\n"
    "Retention removes old documents: the object, the vectors and the rows."
)

HTML = "<html><head><title>x</title><style>p{}</style></head><body><p>" + ARTICLE + "</p><script>var secret=1</script></body></html>"


@pytest.fixture()
def profile(personas, post):
    post(personas.writer, "/v1/memory/profile", {"name": "docs", "chunk_size": 128, "chunk_overlap": 24})
    return "docs"


def _complete(upload_id: str) -> Upload:
    upload = Upload.objects.get(pk=upload_id)
    assert upload.state == "complete", (upload.step, upload.failure_reason)
    return upload


@pytest.mark.parametrize(
    "content_type,filename,payload,expected",
    [
        ("text/plain", "a.txt", ARTICLE.encode(), "assembled in order"),
        ("text/markdown", "a.md", ("# Title\n\n" + ARTICLE).encode(), "Retention removes"),
        ("", "notes.md", ARTICLE.encode(), "semantic search"),  # type guessed from the file name
        ("application/json", "a.json", json.dumps({"title": "Doc", "body": [ARTICLE], "n": 3}).encode(), "body: Qdrant stores"),
        (
            "text/html",
            "a.html",
            HTML.encode(),
            "Each point carries",
        ),
        ("application/pdf", "a.pdf", make_pdf(["Vectors in a PDF page.", "Second line of the PDF."]), "Vectors in a PDF page"),
    ],
)
def test_each_supported_type_lands_in_qdrant_with_deterministic_ids(
    personas, upload_file, eager_celery, profile, content_type, filename, payload, expected
):
    body = upload_file(
        personas.writer, payload, 300, profile=profile, filename=filename, content_type=content_type, metadata={"team": "x"}
    ).json()
    upload = _complete(body["upload_id"])
    assert upload.vector_count == upload.segment_count >= 1
    assert vectors.count_upload_vectors(upload.collection, upload.id) == upload.vector_count
    with vectors.qdrant() as client:
        point = client.retrieve(upload.collection, [vectors.point_id(upload.id, 0)], with_payload=True)[0]
        points, _ = client.scroll(upload.collection, limit=100, with_payload=True)
    assert point.payload["upload_id"] == str(upload.id) and point.payload["segment_index"] == 0
    assert point.payload["metadata"] == {"team": "x"}
    joined = " ".join(p.payload["text"] for p in points)
    assert expected in joined
    assert "var secret" not in joined  # HTML: text only


def test_collection_per_tenant_profile_and_model_with_the_models_vector_size(personas, upload_file, eager_celery, profile):
    upload = _complete(upload_file(personas.writer, ARTICLE.encode(), 1000, profile=profile, content_type="text/plain").json()["upload_id"])
    assert upload.collection == vectors.collection_name("acme", "docs", "hash-384")
    with vectors.qdrant() as client:
        info = client.get_collection(upload.collection)
    assert info.config.params.vectors.size == 384


def test_reprocessing_is_idempotent(personas, upload_file, post, eager_celery, profile):
    upload = _complete(upload_file(personas.writer, ARTICLE.encode(), 1000, profile=profile, content_type="text/plain").json()["upload_id"])
    response = post(personas.writer, f"/v1/memory/uploads/{upload.id}/reprocess", {})
    assert response.status_code == 202
    again = _complete(str(upload.id))
    assert again.vector_count == upload.vector_count
    assert vectors.count_upload_vectors(again.collection, again.id) == upload.vector_count


def test_unsupported_type_fails_with_a_reason_and_publishes_the_failure(personas, upload_file, eager_celery, profile):
    body = upload_file(personas.writer, b"\x00\x01binary", 100, profile=profile, content_type="application/zip").json()
    upload = Upload.objects.get(pk=body["upload_id"])
    assert upload.state == "failed"
    assert upload.step == "extract"
    assert "application/zip" in upload.failure_reason
    assert upload.checksum  # assembled fine; only extraction failed
    event = OutboxEvent.objects.get(topic=MEMORY_UPLOADS, event_type="memory.upload.failed")
    assert event.key == str(upload.id) and event.tenant_id == "acme"
    assert AuditRecord.objects.filter(action="memory.upload.failed", resource_id=str(upload.id)).exists()
    status = personas.teammate.get(f"/v1/memory/status?upload_id={upload.id}").json()["uploads"][0]
    assert status["state"] == "failed" and status["failure_reason"] and status["step"] == "extract"


def test_completion_publishes_memory_upload_completed(personas, upload_file, eager_celery, profile):
    body = upload_file(personas.writer, ARTICLE.encode(), 100, profile=profile, content_type="text/plain").json()
    upload = _complete(body["upload_id"])
    event = OutboxEvent.objects.get(topic=MEMORY_UPLOADS, event_type="memory.upload.completed")
    data = event.envelope["data"]
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "events" / f"{MEMORY_UPLOADS}.json").read_text())
    jsonschema.validate(event.envelope, schema)
    assert data["bytes"] == len(ARTICLE)
    assert data["upload_id"] == str(upload.id) and data["checksum"] == upload.checksum and data["size_bytes"] == len(ARTICLE)
    assert AuditRecord.objects.filter(action="memory.upload.completed", resource_id=str(upload.id)).exists()


def test_a_failed_step_is_retried_through_reprocess(personas, upload_file, post, eager_celery, http_server):
    """The remote model fails first (503 from a real local HTTP server), then answers; reprocess completes."""
    with override_settings(AION_EMBEDDINGS_URL=http_server.url("/v1")):
        post(
            personas.writer, "/v1/memory/profile", {"name": "remote", "embedding_model": "openai-compatible:mini-embed", "chunk_size": 128}
        )
        http_server.respond(503, {"error": "warming up"})
        body = upload_file(personas.writer, ARTICLE.encode(), 1000, profile="remote", content_type="text/plain").json()
        upload = Upload.objects.get(pk=body["upload_id"])
        assert upload.state == "failed" and upload.step == "embed" and "503" in upload.failure_reason

        def answer(request):
            inputs = request.json()["input"]
            return 200, {"data": [{"index": i, "embedding": [float(len(t) % 7), 1.0, 0.5]} for i, t in enumerate(inputs)]}, {}

        http_server.handler = answer
        assert post(personas.writer, f"/v1/memory/uploads/{upload.id}/reprocess", {}).status_code == 202
        upload = _complete(str(upload.id))
    assert upload.vector_count >= 1
    sent = http_server.requests[-1]
    assert sent.path == "/v1/embeddings" and sent.json()["model"] == "mini-embed"
    with vectors.qdrant() as client:
        assert client.get_collection(upload.collection).config.params.vectors.size == 3


def test_reprocess_refuses_uploads_still_receiving_and_checks_tenancy_and_roles(personas, ingest, post):
    upload_id = ingest(personas.writer, data=b"x", chunk_index=0, total_chunks=2).json()["upload_id"]
    url = f"/v1/memory/uploads/{upload_id}/reprocess"
    assert post(personas.writer, url, {}).status_code == 409
    assert post(personas.outsider, url, {}).status_code == 404
    assert post(personas.teammate, url, {}).status_code == 403
    assert post(personas.anonymous, url, {}).status_code == 401
    assert post(personas.writer, "/v1/memory/uploads/00000000-0000-4000-8000-000000000000/reprocess", {}).status_code == 404


def test_a_pipeline_without_store_completes_without_vectors(personas, post, upload_file, eager_celery):
    post(personas.writer, "/v1/memory/profile", {"name": "parse-only", "pipeline": ["extract", "chunk"], "chunk_size": 128})
    upload = _complete(
        upload_file(personas.writer, ARTICLE.encode(), 1000, profile="parse-only", content_type="text/plain").json()["upload_id"]
    )
    assert upload.segment_count >= 2 and upload.vector_count == 0


def test_chunker_respects_size_overlap_and_sentence_boundaries():
    source = " ".join(f"Sentence number {i} is here." for i in range(60))
    segments = text.chunk_text(source, 128, 32)
    assert all(len(s) <= 128 for s in segments)
    assert all(s.endswith(".") for s in segments)  # cut at sentence ends
    for previous, current in itertools.pairwise(segments):
        assert current.startswith("Sentence")  # the overlap starts at a sentence start
        assert current.split(" is here.")[0] in previous  # ...taken from the previous segment
    paragraphs = text.chunk_text("First para.\n\nSecond para.", 128, 16)
    assert paragraphs == ["First para.\n\nSecond para."]
    long_word = text.chunk_text("x" * 300, 128, 0)
    assert [len(s) for s in long_word] == [128, 128, 44]


def test_completion_and_failure_become_webhook_deliveries(personas, ingest, profile):
    """The hooks app turns memory.upload.* events into deliveries for subscribed endpoints (in the same transaction)."""
    from hooks.models import WebhookDelivery, WebhookEndpoint
    from memory import services

    WebhookEndpoint.objects.create(
        tenant_id="acme", url="https://hooks.example/memory", event_types=["memory.upload.*"], secret_encrypted="-"
    )
    done = ingest(personas.writer, data=ARTICLE.encode(), chunk_index=0, total_chunks=1, profile=profile, content_type="text/plain").json()
    bad = ingest(personas.writer, data=b"\x00", chunk_index=0, total_chunks=1, profile=profile, content_type="image/png").json()
    for upload_id in (done["upload_id"], bad["upload_id"]):
        assert services.assemble_upload(upload_id)
        services.process_upload(upload_id)
    deliveries = {d.payload["data"]["upload_id"]: d.event_type for d in WebhookDelivery.objects.filter(tenant_id="acme")}
    assert deliveries == {done["upload_id"]: "memory.upload.completed", bad["upload_id"]: "memory.upload.failed"}
