"""The pipeline through a real Celery worker subprocess (not eager): chunks in, a searchable document out."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from django.conf import settings
from django.test import override_settings

from aion.roles import Role
from aion.testing.chunks import b64
from aion.testing.factories import api_client, make_api_key
from aion.testing.processes import start_celery_worker, stop
from memory import vectors
from memory.models import Upload

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = (
    b"Workers assemble uploads and embed their segments.\n\n"
    b"The lighthouse keeper polished the great lamp every evening before the storm.\n\n"
    b"Search finds the segment nearest to the question."
)


def test_a_real_worker_assembles_embeds_and_stores_the_upload():
    from aion.celery import app

    # The worker and this process must share the bucket and Qdrant folders (the worker uses the defaults).
    storages = dict(settings.STORAGES)
    storages["memory"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(settings.MEDIA_ROOT / "memory")},
    }
    # A queue of our own: other suites may share the broker (Redis) at the same time.
    queue = f"memory-test-{uuid.uuid4().hex[:8]}"
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    vectors.reset_client()
    worker = start_celery_worker("-Q", queue, "--hostname", f"{queue}@%h")
    try:
        with override_settings(STORAGES=storages, QDRANT_PATH=settings.VAR_DIR / "qdrant"):
            raw, _ = make_api_key([Role.MEMORY_WRITER, Role.MEMORY_READER])
            client = api_client(raw)
            chunks = [TEXT[:60], TEXT[60:]]
            first = client.post(
                "/v1/memory/ingest",
                {"chunk_index": 1, "total_chunks": 2, "data": b64(chunks[1]), "content_type": "text/plain", "filename": "w.txt"},
                format="json",
            )
            upload_id = first.json()["upload_id"]
            last = client.post("/v1/memory/ingest", {"upload_id": upload_id, "chunk_index": 0, "data": b64(chunks[0])}, format="json")
            assert last.json()["state"] == "assembling"

            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                upload = Upload.objects.get(pk=upload_id)
                if upload.state in ("complete", "failed"):
                    break
                time.sleep(0.3)
            assert upload.state == "complete", (upload.state, upload.step, upload.failure_reason)
            assert upload.checksum == hashlib.sha256(TEXT).hexdigest() and upload.size_bytes == len(TEXT)
            hits = client.post("/v1/memory/search", {"profile": "default", "query": "lighthouse keeper lamp", "top_k": 1}, format="json")
            assert hits.status_code == 200, hits.json()
            assert "lighthouse keeper" in hits.json()["hits"][0]["text"]
    finally:
        output = stop(worker)
        app.conf.task_default_queue = previous_queue
        vectors.reset_client()
    assert "Traceback" not in output, output[-3000:]
