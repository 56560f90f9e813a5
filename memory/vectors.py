"""Qdrant: one collection per tenant, profile and model; deterministic point ids; search.

Embedded local mode (``settings.QDRANT_PATH``) is the default and ``QDRANT_URL`` selects a server.
With a server, one shared client serves every thread.

Local mode keeps every point of the folder in memory and its own lock on the folder is exclusive
for the client's lifetime, while the web process and the worker processes share the folder. So:

* Processes take turns through OUR lock file beside the folder (``<QDRANT_PATH>.aion-lock``,
  ``fcntl.flock``), held only during an operation, and acquired BEFORE the client reads the folder
  (qdrant-client's local mode loads the folder before taking its own lock, so without ours a process
  could load a stale copy while another one writes, then save metadata that forgets a collection).
* Each process keeps ONE long-lived client (opening re-reads every point: ~0.5 s for 6000 points,
  against ~10 ms for a search on an open client) and gives up qdrant's own folder lock right after
  opening (ours replaces it). The lock file holds a generation counter bumped by every write; a
  process whose client was loaded at an older generation reopens it before using it, so it always
  sees other processes' writes.
* Threads of a process share the client under a threading lock (SQLite's same-thread check is
  disabled for it, which is safe because use is serialised).
* If qdrant-client's internals change so its folder lock cannot be given up, the client is closed
  after each operation instead (the slower behaviour, still correct).
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings

logger = logging.getLogger("aion.memory")
POINT_NAMESPACE = uuid.UUID("6f1c0a52-8d0e-4b5e-9a53-2f2d4c1a9e10")
_lock = threading.RLock()
_client: Any = None  # the server client


@dataclass
class _LocalClient:
    client: Any
    path: str
    generation: int
    pid: int
    reusable: bool  # False when qdrant's own folder lock could not be given up


_local: _LocalClient | None = None
# How many times this process opened the local folder (observability and tests).
local_opens = 0


class VectorStoreUnavailable(Exception):
    pass


def collection_name(tenant_id: str, profile_name: str, model_key: str) -> str:
    """Per tenant and profile; the model is part of the name so a model change never mixes vector sizes."""
    raw = f"memory__{tenant_id}__{profile_name}__{model_key}".lower()
    return re.sub(r"[^a-z0-9_-]+", "-", raw)[:250]


def point_id(upload_id: Any, segment_index: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{upload_id}:{segment_index}"))


def _server_client() -> Any:
    from qdrant_client import QdrantClient

    return QdrantClient(url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY or None, timeout=30)


def lock_path(folder: str) -> Path:
    return Path(f"{folder.rstrip(os.sep)}.aion-lock")


@contextmanager
def _folder_lock(folder: str) -> Iterator[IO[str]]:
    """Hold the inter-process lock of FOLDER (waiting up to AION_QDRANT_LOCAL_LOCK_WAIT_SECONDS)."""
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + float(settings.AION_QDRANT_LOCAL_LOCK_WAIT_SECONDS)
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise VectorStoreUnavailable(f"the local Qdrant folder {folder} stayed busy") from None
                time.sleep(0.01)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_generation(handle: IO[str]) -> int:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else 0


def _write_generation(handle: IO[str], generation: int) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(str(generation))
    handle.flush()


def _give_up_qdrant_folder_lock(client: Any) -> bool:
    """Release qdrant-client's own exclusive folder lock (our lock file replaces it)."""
    flock_file = getattr(getattr(client, "_client", None), "_flock_file", None)
    if flock_file is None or flock_file.closed:
        return False
    import portalocker

    portalocker.unlock(flock_file)
    return True


def _close_local() -> None:
    global _local
    if _local is not None and _local.pid == os.getpid():
        try:
            _local.client.close()
        except Exception:  # a broken client is dropped either way
            logger.warning("closing the local Qdrant client failed", exc_info=True)
    _local = None  # a client inherited through fork() is abandoned, never closed (its files belong to the parent)


def _open_local(path: str, generation: int) -> _LocalClient:
    global local_opens
    from qdrant_client import QdrantClient

    try:
        client = QdrantClient(path=path, force_disable_check_same_thread=True)
    except RuntimeError as exc:  # a process not using our lock file holds the folder
        raise VectorStoreUnavailable(f"the local Qdrant folder is busy: {exc}") from exc
    local_opens += 1
    return _LocalClient(client, path, generation, os.getpid(), reusable=_give_up_qdrant_folder_lock(client))


@contextmanager
def qdrant(*, write: bool = False) -> Iterator[Any]:
    """The client to use now. WRITE: the operation may change the store (other processes must reload)."""
    global _client, _local
    if settings.QDRANT_URL:
        # A server client is thread-safe: shared, never closed, used without holding the lock.
        with _lock:
            if _client is None:
                _client = _server_client()
            client = _client
        yield client
        return
    path = str(settings.QDRANT_PATH)
    with _lock, _folder_lock(path) as handle:
        generation = _read_generation(handle)
        if _local is not None and (_local.pid != os.getpid() or _local.path != path or _local.generation != generation):
            _close_local()  # another process wrote since this client loaded the folder (or a fork, or a new path)
        if _local is None:
            _local = _open_local(path, generation)
        if write:
            # Bumped before writing: even a process killed mid-write makes the others reload.
            _local.generation = generation + 1
            _write_generation(handle, _local.generation)
        try:
            yield _local.client
        finally:
            if not _local.reusable:
                _close_local()


@atexit.register
def _close_at_exit() -> None:
    """Close the long-lived client while modules still exist (its ``__del__`` fails at interpreter teardown)."""
    with _lock:
        _close_local()


def reset_client() -> None:
    """Forget the clients (tests switch QDRANT_PATH between runs)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _close_local()


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

    with qdrant(write=True) as client:
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
    with qdrant(write=True) as client:
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
