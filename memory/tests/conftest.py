"""Fixtures of the memory tests: isolated storage and Qdrant folders, eager Celery, personas, helpers."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.test import override_settings

from aion.testing.chunks import Personas, b64, split


@pytest.fixture(autouse=True)
def memory_isolation(tmp_path, settings):
    """Each test gets its own bucket folder and Qdrant folder (the DB rolls back; files would not)."""
    from memory import vectors

    storages = dict(settings.STORAGES)
    storages["memory"] = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "bucket")}}
    vectors.reset_client()
    with override_settings(STORAGES=storages, QDRANT_PATH=tmp_path / "qdrant", QDRANT_URL=""):
        yield tmp_path
    vectors.reset_client()


@pytest.fixture()
def s3_memory(s3_server, settings):
    """STORAGES["memory"] on a fresh bucket of the real S3-compatible test server; yields (boto3 client, bucket)."""
    from memory.storage import S3Backend, get_backend

    bucket = f"memory-{os.urandom(4).hex()}"
    s3_server.create_bucket(bucket)
    storages = dict(settings.STORAGES)
    storages["memory"] = s3_server.storage_settings(bucket)
    with override_settings(STORAGES=storages):
        assert isinstance(get_backend(), S3Backend)
        yield s3_server.client(), bucket


@pytest.fixture()
def eager_celery():
    """Tasks run inline when their transaction commits (capture on_commit callbacks with execute=True)."""
    from aion.celery import app

    previous = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture()
def personas(db) -> Personas:
    return Personas()


@pytest.fixture()
def post(django_capture_on_commit_callbacks):
    """POST JSON and run the on-commit callbacks (the pipeline tasks when Celery is eager)."""

    def call(client, path: str, body: Any, **extra: Any):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path, body, format="json", **extra)

    return call


@pytest.fixture()
def ingest(post):
    """Send one chunk: ingest(client, chunk_index=0, data=b"...", **fields)."""

    def call(client, *, data: bytes, chunk_index: int, **fields: Any):
        body = {"chunk_index": chunk_index, "data": b64(data), **fields}
        return post(client, "/v1/memory/ingest", body)

    return call


@pytest.fixture()
def upload_file(ingest):
    """Upload DATA in chunks of SIZE (in order) and return the last response."""

    def call(client, data: bytes, size: int, **fields: Any):
        chunks = split(data, size)
        first = ingest(client, data=chunks[0], chunk_index=0, total_chunks=len(chunks), **fields)
        assert first.status_code == 201, first.json()
        upload_id = first.json()["upload_id"]
        last = first
        for index, chunk in enumerate(chunks[1:], start=1):
            last = ingest(client, data=chunk, chunk_index=index, upload_id=upload_id)
            assert last.status_code == 200, last.json()
        return last

    return call
