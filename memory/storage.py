"""Where upload bytes live: chunk files/parts, the assembled object, and its removal.

Two backends behind one small interface, chosen from ``STORAGES["memory"]`` (django-storages):

* ``LocalBackend`` (FileSystemStorage, the embedded default): each chunk is a file under
  ``chunks/<upload id>/``; assembly streams them in order into the object while hashing.
* ``S3Backend`` (S3Storage, with ``AION_S3_ENDPOINT_URL``): the object is an S3 multipart upload
  created with the upload. A chunk goes straight to S3 as part ``index + 1`` only when that can
  never break S3's rule (every part but the last is at least 5 MiB): it is at least 5 MiB (or the
  upload's last chunk) AND its predecessor is itself a direct part (or it is chunk 0). So direct
  parts always form a prefix of the upload. Every other chunk is buffered as a
  ``chunks/<upload id>/<index>`` object; at assembly the buffered tail is turned into parts in
  order: a buffered chunk of at least 5 MiB with nothing pending becomes a part by a server-side
  ``UploadPartCopy``, smaller ones are joined (streamed, spooled to disk) until they reach 5 MiB.
  Any arrival order and any chunk sizes therefore assemble. ``CompleteMultipartUpload`` creates
  the object, then one streaming read computes its sha256.

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
    def write_chunk(self, upload: UploadTarget, index: int, data: bytes, *, may_be_part: bool = False) -> tuple[str, str]: ...
    def assemble(self, upload: UploadTarget, chunks: list[ChunkRef]) -> Assembled: ...
    def discard_chunks(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None: ...
    def abort(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> bool: ...  # True: a multipart upload was aborted at the store
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


def fsync_folder(folder: str) -> None:
    """Make a rename in FOLDER durable (the new name is a change to the folder itself)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class LocalBackend:
    """Files under the ``memory`` storage's location (FileSystemStorage)."""

    name = "filesystem"

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def _path(self, key: str) -> str:
        return str(self.storage.path(key))

    def _write_atomically(self, key: str, data: bytes) -> None:
        """Write, fsync, rename, fsync the folder: once the caller acknowledges the chunk it survives a crash."""
        path = self._path(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        temp = f"{path}.{uuid.uuid4().hex}.part"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)  # two identical resends race harmlessly
        fsync_folder(folder)

    def begin(self, upload: UploadTarget) -> str:
        return ""

    def write_chunk(self, upload: UploadTarget, index: int, data: bytes, *, may_be_part: bool = False) -> tuple[str, str]:
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
                sink.flush()
                os.fsync(sink.fileno())  # the chunks are deleted next: the object must be on disk first
            os.replace(temp, target)
            fsync_folder(os.path.dirname(target))
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

    def abort(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> bool:
        self.discard_chunks(upload, chunks)
        return False  # no multipart upload on a filesystem

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

    def write_chunk(self, upload: UploadTarget, index: int, data: bytes, *, may_be_part: bool = False) -> tuple[str, str]:
        """A direct part when MAY_BE_PART (the caller checked the prefix rule), else a buffered object."""
        if may_be_part:
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=self._key(upload.object_key),
                UploadId=upload.multipart_upload_id,
                PartNumber=index + 1,
                Body=data,
            )
            return "", str(response["ETag"])
        key = chunk_key(upload, index)
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return key, ""

    def _upload_part(self, upload: UploadTarget, number: int, body: IO[bytes]) -> dict[str, Any]:
        body.seek(0)
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self._key(upload.object_key), UploadId=upload.multipart_upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _copy_part(self, upload: UploadTarget, number: int, source_key: str) -> dict[str, Any]:
        """A buffered chunk that is a valid part on its own: copied inside S3, no bytes through the worker."""
        response = self.client.upload_part_copy(
            Bucket=self.bucket,
            Key=self._key(upload.object_key),
            UploadId=upload.multipart_upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": self._key(source_key)},
        )
        return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

    @staticmethod
    def plan_parts(chunks: list[ChunkRef]) -> list[tuple[str, list[ChunkRef]]]:
        """How the chunks become parts, in order: ("direct" | "copy" | "join", chunks).

        Each entry becomes part ``chunks[0].index + 1`` (unique and ascending). Every entry but the
        last is at least 5 MiB: direct parts are (write_chunk's prefix rule), copies are by choice,
        and a join only ends early at the end of the upload.
        """
        plan: list[tuple[str, list[ChunkRef]]] = []
        pending: list[ChunkRef] = []
        pending_size = 0
        for chunk in sorted(chunks, key=lambda c: c.index):
            if chunk.part_etag:
                if pending:
                    raise AssemblyError(f"chunk {chunk.index} is a direct part after buffered chunks; direct parts must form a prefix")
                plan.append(("direct", [chunk]))
                continue
            if not pending and chunk.size >= S3_MIN_PART_BYTES:
                plan.append(("copy", [chunk]))
                continue
            pending.append(chunk)
            pending_size += chunk.size
            if pending_size >= S3_MIN_PART_BYTES:
                plan.append(("join", pending))
                pending, pending_size = [], 0
        if pending:
            plan.append(("join", pending))  # the last part may be any size
        return plan

    def assemble(self, upload: UploadTarget, chunks: list[ChunkRef]) -> Assembled:
        parts: list[dict[str, Any]] = []
        try:
            for kind, members in self.plan_parts(chunks):
                number = members[0].index + 1
                if kind == "direct":
                    parts.append({"PartNumber": number, "ETag": members[0].part_etag})
                elif kind == "copy":
                    parts.append(self._copy_part(upload, number, members[0].storage_key))
                else:
                    # Spooled: memory holds at most one part's worth, larger joins go to a temp file.
                    with tempfile.SpooledTemporaryFile(max_size=S3_MIN_PART_BYTES) as pending:
                        for member in members:
                            body = self.client.get_object(Bucket=self.bucket, Key=self._key(member.storage_key))["Body"]
                            copy_hashing(body, pending, hashlib.sha256())
                        parts.append(self._upload_part(upload, number, pending))
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(upload.object_key),
                UploadId=upload.multipart_upload_id,
                MultipartUpload={"Parts": parts},
            )
        except self.client.exceptions.ClientError as exc:
            raise AssemblyError(f"S3 refused the assembly: {exc}") from exc
        # The checksum needs every byte in order; one streaming read, in the worker, not the web process.
        digest = hashlib.sha256()
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(upload.object_key))["Body"]
        size = copy_hashing(body, None, digest)
        return Assembled(digest.hexdigest(), size)

    def discard_chunks(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> None:
        keys = [{"Key": self._key(c.storage_key)} for c in chunks if c.storage_key]
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})

    def abort(self, upload: UploadTarget, chunks: Iterable[ChunkRef]) -> bool:
        self.discard_chunks(upload, chunks)
        if not upload.multipart_upload_id:
            return False
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(upload.object_key), UploadId=upload.multipart_upload_id)
        except self.client.exceptions.ClientError as exc:
            # Already gone (MinIO's stale_uploads_expiry or a bucket rule got there first): nothing aborted here.
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                raise
            return False
        return True

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
