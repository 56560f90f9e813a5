"""Qdrant: one collection per tenant, profile and model; deterministic point ids; search.

Embedded local mode (``settings.QDRANT_PATH``) is the default and ``QDRANT_URL`` selects a server.
Local mode holds an exclusive lock on its folder per client, so this process opens ONE client at a
time (under a lock) and closes it after each operation, so that the web process and the worker
processes (which share the folder in development) take turns instead of failing. With a server,
one shared client serves every thread.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

POINT_NAMESPACE = uuid.UUID("6f1c0a52-8d0e-4b5e-9a53-2f2d4c1a9e10")
_lock = threading.RLock()
_client: Any = None


class VectorStoreUnavailable(Exception):
    pass


def collection_name(tenant_id: str, profile_name: str, model_key: str) -> str:
    """Per tenant and profile; the model is part of the name so a model change never mixes vector sizes."""
    raw = f"memory__{tenant_id}__{profile_name}__{model_key}".lower()
    return re.sub(r"[^a-z0-9_-]+", "-", raw)[:250]


def point_id(upload_id: Any, segment_index: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{upload_id}:{segment_index}"))


def _open() -> Any:
    from qdrant_client import QdrantClient

    if settings.QDRANT_URL:
        return QdrantClient(url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY or None, timeout=30)
    path = str(settings.QDRANT_PATH)
    deadline = time.monotonic() + float(settings.AION_QDRANT_LOCAL_LOCK_WAIT_SECONDS)
    while True:
        try:
            return QdrantClient(path=path)
        except RuntimeError as exc:
            if "already accessed" not in str(exc) or time.monotonic() >= deadline:
                raise VectorStoreUnavailable(f"the local Qdrant folder is busy: {exc}") from exc
            time.sleep(0.2)


@contextmanager
def qdrant() -> Iterator[Any]:
    """The client to use now: the process's shared server client, or the local folder for one operation."""
    global _client
    if settings.QDRANT_URL:
        # A server client is thread-safe: shared, never closed, used without holding the lock.
        with _lock:
            if _client is None:
                _client = _open()
            client = _client
        yield client
        return
    # Local mode: one client at a time in this process, released after use for the other processes.
    with _lock:
        local = _open()
        try:
            yield local
        finally:
            local.close()


def reset_client() -> None:
    """Forget the client (tests switch QDRANT_PATH between runs)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None


def _upload_filter(upload_id: Any, from_segment: int | None = None) -> Any:
    from qdrant_client import models

    must: list[Any] = [models.FieldCondition(key="upload_id", match=models.MatchValue(value=str(upload_id)))]
    if from_segment is not None:
        must.append(models.FieldCondition(key="segment_index", range=models.Range(gte=from_segment)))
    return models.Filter(must=must)


def upsert_segments(
    collection: str, upload_id: Any, vectors: list[list[float]], segments: list[str], metadata: dict[str, Any], extra: dict[str, Any]
) -> int:
    """Idempotent: the same upload and segment index always land on the same point."""
    from qdrant_client import models

    with qdrant() as client:
        if vectors and not client.collection_exists(collection):
            client.create_collection(collection, vectors_config=models.VectorParams(size=len(vectors[0]), distance=models.Distance.COSINE))
            if settings.QDRANT_URL:
                client.create_payload_index(collection, "upload_id", models.PayloadSchemaType.KEYWORD)
        if not client.collection_exists(collection):
            return 0
        for start in range(0, len(vectors), 256):
            points = [
                models.PointStruct(
                    id=point_id(upload_id, index),
                    vector=vectors[index],
                    payload={"upload_id": str(upload_id), "segment_index": index, "text": segments[index], "metadata": metadata, **extra},
                )
                for index in range(start, min(start + 256, len(vectors)))
            ]
            client.upsert(collection, points=points, wait=True)
        # A reprocess that yields fewer segments must not leave the old tail behind.
        client.delete(collection, points_selector=models.FilterSelector(filter=_upload_filter(upload_id, len(vectors))), wait=True)
    return len(vectors)


def delete_upload_vectors(collection: str, upload_id: Any) -> None:
    from qdrant_client import models

    if not collection:
        return
    with qdrant() as client:
        if client.collection_exists(collection):
            client.delete(collection, points_selector=models.FilterSelector(filter=_upload_filter(upload_id)), wait=True)


def count_upload_vectors(collection: str, upload_id: Any) -> int:
    with qdrant() as client:
        if not collection or not client.collection_exists(collection):
            return 0
        return int(client.count(collection, count_filter=_upload_filter(upload_id), exact=True).count)


def search(collection: str, vector: list[float], top_k: int, metadata_filter: dict[str, Any]) -> list[Any]:
    from qdrant_client import models

    conditions: list[Any] = [
        models.FieldCondition(key=f"metadata.{key}", match=models.MatchValue(value=value)) for key, value in metadata_filter.items()
    ]
    with qdrant() as client:
        if not client.collection_exists(collection):
            return []
        result = client.query_points(
            collection, query=vector, limit=top_k, query_filter=models.Filter(must=conditions) if conditions else None, with_payload=True
        )
        return list(result.points)
