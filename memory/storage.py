"""Where upload bytes live: chunk files/parts, the assembled object, and its removal.

Two backends behind one small interface, chosen from ``STORAGES["memory"]`` (django-storages):

* ``LocalBackend`` (FileSystemStorage, the embedded default): each chunk is a file under
  ``chunks/<upload id>/``; assembly streams them in order into the object while hashing.
* ``S3Backend`` (S3Storage, with ``AION_S3_ENDPOINT_URL``): the object is an S3 multipart upload
  created with the upload. A chunk of at least 5 MiB (S3's part minimum) is sent straight to S3
  as part ``index + 1``; smaller chunks are buffered as ``chunks/<upload id>/<index>`` objects and
  joined into parts of at least 5 MiB at assembly. ``CompleteMultipartUpload`` creates the object,
  then one streaming read computes its sha256.

Memory stays proportional to one chunk: every copy goes through fixed-size blocks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any, Protocol

from django.core.files.storage import storages

BLOCK = 1024 * 1024
S3_MIN_PART_BYTES = 5 * 1024 * 1024
S3_MAX_PARTS = 10_000


class AssemblyError(Exception):
    """The chunks cannot be turned into one object (reason in the message)."""


@dataclass(frozen=True)
class ChunkRef:
    index: int
    size: int
    storage_key: str
    part_etag: str


@dataclass(frozen=True)
class Assembled:
    checksum: str
    size: int


class UploadTarget(Protocol):
    """What a backend needs to know about an upload."""

    id: Any
    object_key: str
    multipart_upload_id: str
    content_type: str


class MemoryBackend(Protocol):
    name: str

    def begin(self, upload: UploadTarget) -> str: ...
    def write_chunk(self, upload: UploadTarget, index: int, data: bytes) -> tuple[str, str]: ...
    def assemble(self, upload: UploadTarget, chunks: list[ChunkRef]) -> Assembled: ...
    def discard_chunks(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None: ...
    def abort(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None: ...
    def open_object(self, key: str) -> IO[bytes]: ...
    def object_exists(self, key: str) -> bool: ...
    def delete_object(self, key: str) -> None: ...


def chunk_key(upload: UploadTarget, index: int) -> str:
    return f"chunks/{upload.id}/{index:06d}"


def copy_hashing(source: IO[bytes], sink: IO[bytes] | None, digest: Any) -> int:
    """Copy SOURCE to SINK block by block, feeding DIGEST; returns the byte count."""
    total = 0
    while True:
        block = source.read(BLOCK)
        if not block:
            return total
        digest.update(block)
        if sink is not None:
            sink.write(block)
        total += len(block)


class LocalBackend:
    """Files under the ``memory`` storage's location (FileSystemStorage)."""

    name = "filesystem"

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def _path(self, key: str) -> str:
        return str(self.storage.path(key))

    def _write_atomically(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = f"{path}.{uuid.uuid4().hex}.part"
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)  # two identical resends race harmlessly

    def begin(self, upload: UploadTarget) -> str:
        return ""

    def write_chunk(self, upload: UploadTarget, index: int, data: bytes) -> tuple[str, str]:
        key = chunk_key(upload, index)
        self._write_atomically(key, data)
        return key, ""

    def assemble(self, upload: UploadTarget, chunks: list[ChunkRef]) -> Assembled:
        target = self._path(upload.object_key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        temp = f"{target}.{uuid.uuid4().hex}.part"
        try:
            with open(temp, "wb") as sink:
                for chunk in sorted(chunks, key=lambda c: c.index):
                    try:
                        with open(self._path(chunk.storage_key), "rb") as source:
                            size += copy_hashing(source, sink, digest)
                    except FileNotFoundError as exc:
                        raise AssemblyError(f"chunk {chunk.index} is missing from storage") from exc
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        return Assembled(digest.hexdigest(), size)

    def discard_chunks(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None:
        for chunk in chunks:
            if chunk.storage_key:
                self.storage.delete(chunk.storage_key)
        folder = self._path(f"chunks/{upload.id}")
        if os.path.isdir(folder):
            for leftover in os.listdir(folder):  # half-written temp files of interrupted requests
                os.unlink(os.path.join(folder, leftover))
            os.rmdir(folder)

    def abort(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None:
        self.discard_chunks(upload, chunks)

    def open_object(self, key: str) -> IO[bytes]:
        return self.storage.open(key, "rb")  # type: ignore[no-any-return]

    def object_exists(self, key: str) -> bool:
        return bool(self.storage.exists(key))

    def delete_object(self, key: str) -> None:
        self.storage.delete(key)


class S3Backend:
    """An S3/MinIO bucket through the client django-storages configured."""

    name = "s3"

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.client = storage.connection.meta.client
        self.bucket = storage.bucket_name
        self.prefix = (getattr(storage, "location", "") or "").strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def begin(self, upload: UploadTarget) -> str:
        extra = {"ContentType": upload.content_type} if upload.content_type else {}
        response = self.client.create_multipart_upload(Bucket=self.bucket, Key=self._key(upload.object_key), **extra)
        return str(response["UploadId"])

    def write_chunk(self, upload: UploadTarget, index: int, data: bytes) -> tuple[str, str]:
        if len(data) >= S3_MIN_PART_BYTES:
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=self._key(upload.object_key),
                UploadId=upload.multipart_upload_id,
                PartNumber=index + 1,
                Body=data,
            )
            return "", str(response["ETag"])
        # Too small to be a part on its own: buffered, joined with its neighbours at assembly.
        key = chunk_key(upload, index)
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return key, ""

    def _upload_part(self, upload: UploadTarget, number: int, body: IO[bytes]) -> dict[str, Any]:
        body.seek(0)
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self._key(upload.object_key), UploadId=upload.multipart_upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def assemble(self, upload: UploadTarget, chunks: list[ChunkRef]) -> Assembled:
        parts: list[dict[str, Any]] = []
        pending: Any = None  # spooled buffer of consecutive small chunks
        pending_first = 0
        pending_size = 0

        def flush() -> None:
            nonlocal pending, pending_size
            if pending is not None:
                parts.append(self._upload_part(upload, pending_first + 1, pending))
                pending.close()
                pending, pending_size = None, 0

        try:
            for chunk in sorted(chunks, key=lambda c: c.index):
                if chunk.part_etag:
                    if pending is not None and pending_size < S3_MIN_PART_BYTES:
                        raise AssemblyError(
                            f"chunks before {chunk.index} total {pending_size} bytes, under S3's 5 MiB part minimum, "
                            "and cannot be joined with the direct part that follows; send chunks of equal size"
                        )
                    flush()
                    parts.append({"PartNumber": chunk.index + 1, "ETag": chunk.part_etag})
                    continue
                if pending is None:
                    pending = tempfile.SpooledTemporaryFile(max_size=S3_MIN_PART_BYTES)
                    pending_first, pending_size = chunk.index, 0
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(chunk.storage_key))["Body"]
                pending_size += copy_hashing(body, pending, hashlib.sha256())
                if pending_size >= S3_MIN_PART_BYTES:
                    flush()
            flush()
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(upload.object_key),
                UploadId=upload.multipart_upload_id,
                MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])},
            )
        except self.client.exceptions.ClientError as exc:
            raise AssemblyError(f"S3 refused the assembly: {exc}") from exc
        finally:
            if pending is not None:
                pending.close()
        # The checksum needs every byte in order; one streaming read, in the worker, not the web process.
        digest = hashlib.sha256()
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(upload.object_key))["Body"]
        size = copy_hashing(body, None, digest)
        return Assembled(digest.hexdigest(), size)

    def discard_chunks(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None:
        keys = [{"Key": self._key(c.storage_key)} for c in chunks if c.storage_key]
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})

    def abort(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None:
        self.discard_chunks(upload, chunks)
        if upload.multipart_upload_id:
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._key(upload.object_key), UploadId=upload.multipart_upload_id
                )
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                    raise

    def open_object(self, key: str) -> IO[bytes]:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]  # type: ignore[no-any-return]

    def object_exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError:
            return False
        return True

    def delete_object(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def get_backend() -> MemoryBackend:
    """The backend for ``STORAGES["memory"]`` as currently configured."""
    storage = storages["memory"]
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # pragma: no cover - django-storages[s3] is a runtime requirement
        S3Storage = None  # type: ignore[assignment,misc]
    if S3Storage is not None and isinstance(storage, S3Storage):
        return S3Backend(storage)
    if not hasattr(storage, "path"):
        raise RuntimeError(f"STORAGES['memory'] ({type(storage).__name__}) is neither a filesystem nor an S3 storage")
    return LocalBackend(storage)
