"""State changes of the memory app, in one place: the API, the Console and beat jobs call these.

* ``save_profile``: create or update a profile by name (an update bumps its version).
* ``receive_chunk``: one resumable chunk; the last one moves the upload to ``assembling``.
* ``assemble_upload`` / ``process_upload``: the Celery steps (assemble, then extract, chunk,
  embed, store as the profile lists them), with progress and failures on the upload row.
* ``reprocess_upload``, ``abort_upload``, ``delete_document``, ``search``.
* ``apply_retention`` and ``abort_stale_uploads``: the beat jobs.

Every transition is atomic (``select_for_update`` on the upload) and writes an audit record in
the same transaction; completion and failure are published on ``aion.memory.uploads`` so the
hooks app can turn them into webhook deliveries.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pybase64
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from aion import audit
from aion.auth.principal import system_principal
from aion.enqueue import current_queue, enqueue
from aion.errors import Conflict, Expired, InvalidInput, NotFound, Rejected, TooLarge, Unavailable
from aion.models import AuditResult
from aion.outbox import actor_name, publish
from aion.topics import MEMORY_UPLOADS
from memory import embeddings, text, vectors
from memory.choices import ACTIVE_STATES, PROFILE_STEPS, PipelineStep, UploadState
from memory.metrics import INGEST_BYTES, STEP_DURATION, STORAGE_MULTIPART_ABORTED, VECTORS_STORED
from memory.models import MemoryProfile, Upload, UploadChunk
from memory.storage import S3_MIN_PART_BYTES, AssemblyError, ChunkRef, get_backend

logger = logging.getLogger("aion.memory")

DEFAULT_PROFILE = "default"
MAX_TOTAL_CHUNKS = 10_000  # S3's part-number ceiling; the same limit on every backend


# --- helpers --------------------------------------------------------------------------------------


def compact_ranges(indices: list[int]) -> str:
    """[3,4,5,6,7,9] -> "3-7,9"."""
    out: list[str] = []
    start = prev = None
    for index in sorted(indices):
        if start is None:
            start = prev = index
        elif index == prev + 1:  # type: ignore[operator]
            prev = index
        else:
            out.append(f"{start}-{prev}" if start != prev else str(start))
            start = prev = index
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else str(start))
    return ",".join(out)


def missing_indices(upload: Upload) -> list[int]:
    stored = set(upload.chunks.filter(stored=True).values_list("index", flat=True))
    return [i for i in range(upload.total_chunks) if i not in stored]


def _safe_filename(filename: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", filename.rsplit("/", 1)[-1]).strip("._")
    return cleaned[:120] or "document"


def upload_identity(upload: Upload) -> dict[str, Any]:
    """What every view of an upload starts with (the API's progress body, the audit record, the event)."""
    return {
        "upload_id": str(upload.id),
        "state": upload.state,
        "profile": upload.profile_config.get("name"),
        "profile_version": upload.profile_version,
        "filename": upload.filename,
        "content_type": upload.content_type,
    }


def _upload_summary(upload: Upload) -> dict[str, Any]:
    return {
        **upload_identity(upload),
        "total_chunks": upload.total_chunks,
        "bytes_received": upload.bytes_received,
        "checksum": upload.checksum,
        "size_bytes": upload.size_bytes,
        "bytes": upload.size_bytes if upload.size_bytes is not None else upload.bytes_received,
        "object_key": upload.object_key,
        "vector_count": upload.vector_count,
        "step": upload.step,
        "failure_reason": upload.failure_reason,
    }


def _record_upload_change(
    upload: Upload, action: str, actor: Any, *, before_state: str, publish_event: bool = False, **audit_fields: Any
) -> None:
    """Audit a state change of UPLOAD (in the caller's transaction); PUBLISH_EVENT also sends ACTION on the uploads topic."""
    audit.record(
        action,
        "memory.upload",
        upload.id,
        actor=actor,
        tenant_id=upload.tenant_id,
        before={"state": before_state},
        after=_upload_summary(upload),
        **audit_fields,
    )
    if publish_event:
        publish(MEMORY_UPLOADS, str(upload.id), _upload_summary(upload), event_type=action, tenant_id=upload.tenant_id, actor=actor)


def _chunk_refs(upload: Upload) -> list[ChunkRef]:
    return [
        ChunkRef(c.index, c.size, c.storage_key, c.part_etag)
        for c in upload.chunks.filter(stored=True).order_by("index").only("index", "size", "storage_key", "part_etag")
    ]


def _may_be_direct_part(upload: Upload, index: int, size: int) -> bool:
    """Whether chunk INDEX may go to S3 as part ``index + 1`` right away.

    Only when no assembly can ever need to join it with a short run before it: it is a valid
    part on its own (at least 5 MiB, or the last chunk) and its predecessor is already a direct
    part (so, by induction, direct parts are a prefix of the upload). Anything else is buffered
    and placed at assembly (server-side copy or join); see ``memory.storage``.
    """
    if size < S3_MIN_PART_BYTES and index != upload.total_chunks - 1:
        return False
    if index == 0:
        return True
    return UploadChunk.objects.filter(upload_id=upload.id, index=index - 1, stored=True).exclude(part_etag="").exists()


def _enqueue(task_name: str, upload_id: Any) -> None:
    """Run a pipeline task after the transaction commits; a broker outage leaves the upload retryable."""
    # A step queued by a running task stays on that task's queue (deployments may route memory work).
    enqueue(f"memory.{task_name}", str(upload_id), queue=current_queue())


# --- profiles -------------------------------------------------------------------------------------

PROFILE_FIELDS = ("embedding_model", "chunk_size", "chunk_overlap", "pipeline", "retention_days", "description")


def check_model_loadable(model: str) -> None:
    """A 422 naming the models this installation can load, instead of a failure at every upload's embed step."""
    reason = embeddings.unavailable_reason(model)
    if reason is None:
        return
    available = embeddings.available_models()
    raise Rejected(
        f"This installation cannot load the embedding model {model!r}: {reason} Available models: {', '.join(available)}.",
        code="embedding-model-unavailable",
        errors={"embedding_model": [f"{reason} Available: {', '.join(available)}."]},
        available_models=available,
    )


def save_profile(tenant_id: str, name: str, fields: dict[str, Any], *, actor: Any) -> tuple[MemoryProfile, bool]:
    """Create the profile NAME or update it; an actual change bumps ``version`` (uploads keep theirs)."""
    check_model_loadable(fields.get("embedding_model", embeddings.HASH_MODEL))
    with transaction.atomic():
        profile = MemoryProfile.objects.select_for_update().filter(tenant_id=tenant_id, name=name).first()
        if profile is None:
            try:
                with transaction.atomic():
                    profile = MemoryProfile.objects.create(tenant_id=tenant_id, name=name, **fields)
            except IntegrityError:
                raise Conflict(f"The profile {name!r} was created concurrently; retry to update it.") from None
            audit.record("memory.profile.created", "memory.profile", profile.pk, actor=actor, tenant_id=tenant_id, after=profile.snapshot())
            return profile, True
        before = profile.snapshot() | {"description": profile.description}
        changed = {k: v for k, v in fields.items() if getattr(profile, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(profile, key, value)
            profile.version += 1
            profile.updated_at = timezone.now()
            profile.save()
            audit.record(
                "memory.profile.updated",
                "memory.profile",
                profile.pk,
                actor=actor,
                tenant_id=tenant_id,
                before=before,
                after=profile.snapshot() | {"description": profile.description},
            )
        return profile, False


def default_profile(tenant_id: str, actor: Any) -> MemoryProfile:
    profile = MemoryProfile.objects.filter(tenant_id=tenant_id, name=DEFAULT_PROFILE).first()
    if profile is None:
        profile, _ = save_profile(tenant_id, DEFAULT_PROFILE, {"description": "Created on first use (hash-384)."}, actor=actor)
    return profile


# --- ingestion ------------------------------------------------------------------------------------


@dataclass
class ChunkRequest:
    chunk_index: int
    data: bytes | str  # the chunk's bytes (an octet-stream body) or their standard base64 (the JSON form)
    upload_id: Any = None
    total_chunks: int | None = None
    chunk_sha256: str = ""
    profile: str = ""
    filename: str = ""
    content_type: str = ""
    metadata: dict[str, Any] | None = None


@dataclass
class ChunkResult:
    upload: Upload
    created: bool  # this request created the upload
    duplicate: bool  # the chunk was already stored with identical bytes


def _chunk_too_large(size: int) -> TooLarge:
    limit = settings.AION_MEMORY_MAX_CHUNK_BYTES
    return TooLarge(f"The chunk is {size} bytes; the maximum is {limit} (AION_MEMORY_MAX_CHUNK_BYTES).", code="chunk-too-large")


def decode_chunk(data: bytes | str) -> bytes:
    """The chunk's bytes: raw bytes as they are, base64 text decoded strictly (standard alphabet, padding, no newlines)."""
    limit = settings.AION_MEMORY_MAX_CHUNK_BYTES
    if isinstance(data, bytes):
        if len(data) > limit:
            raise _chunk_too_large(len(data))
        return data
    if len(data) > (limit + 2) // 3 * 4 + 4:  # checked on the text, before spending time decoding it
        raise TooLarge(f"The chunk is over AION_MEMORY_MAX_CHUNK_BYTES ({limit} bytes decoded).", code="chunk-too-large")
    try:
        # pybase64 (SIMD) decodes ~20x faster than binascii, with the same strict rules (validate=True:
        # the standard alphabet and padding only, nothing after the padding); a non-ASCII str is a ValueError.
        decoded = pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("data is not valid standard base64.", code="invalid-base64", errors={"data": ["Invalid base64."]}) from None
    if len(decoded) > limit:
        raise _chunk_too_large(len(decoded))
    return decoded


def _lock_upload(tenant_id: str, upload_id: Any) -> Upload:
    upload = Upload.objects.select_for_update().filter(tenant_id=tenant_id, pk=upload_id).first()
    if upload is None:
        raise NotFound("No such upload.", code="upload-not-found")
    return upload


def _create_upload(tenant_id: str, request: ChunkRequest, actor: Any, now: datetime) -> Upload:
    if request.total_chunks is None:
        raise InvalidInput(
            "total_chunks is required on the first chunk.", errors={"total_chunks": ["This field is required."]}, code="bad-request"
        )
    if request.profile:
        profile = MemoryProfile.objects.filter(tenant_id=tenant_id, name=request.profile).first()
        if profile is None:
            raise InvalidInput(f"Unknown profile {request.profile!r}.", code="unknown-profile", errors={"profile": ["Unknown profile."]})
    else:
        profile = default_profile(tenant_id, actor)
    upload = Upload(
        tenant_id=tenant_id,
        profile=profile,
        profile_version=profile.version,
        profile_config=profile.snapshot(),
        filename=request.filename,
        content_type=request.content_type,
        metadata=request.metadata or {},
        total_chunks=request.total_chunks,
        created_by=actor_name(actor),
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(hours=settings.AION_MEMORY_UPLOAD_TTL_HOURS),
    )
    upload.object_key = f"documents/{tenant_id}/{upload.id}/{_safe_filename(request.filename)}"
    return upload


def _check_consistent(upload: Upload, request: ChunkRequest, now: datetime) -> None:
    if upload.state == UploadState.ABORTED:
        raise Expired("The upload was aborted; start a new one.", code="upload-aborted")
    if upload.state == UploadState.RECEIVING and upload.expires_at <= now:
        raise Expired("The upload expired before all chunks arrived; start a new one.", code="upload-expired")
    conflicts = {}
    if request.total_chunks is not None and request.total_chunks != upload.total_chunks:
        conflicts["total_chunks"] = [f"The upload has total_chunks={upload.total_chunks}."]
    if request.profile and request.profile != upload.profile_config.get("name"):
        conflicts["profile"] = [f"The upload uses the profile {upload.profile_config.get('name')!r}."]
    if request.content_type and request.content_type != upload.content_type:
        conflicts["content_type"] = [f"The upload has content_type {upload.content_type!r}."]
    if conflicts:
        raise Conflict("The chunk does not match its upload.", code="upload-mismatch", errors=conflicts)


def receive_chunk(tenant_id: str, request: ChunkRequest, *, actor: Any, now: datetime | None = None) -> ChunkResult:
    """Store one chunk (idempotently); the request that completes the set starts the assembly.

    Two short transactions around the write, so a slow write holds no row lock: the claim (lock
    the upload, look up the index, check the upload's size limit, insert the chunk row) and the
    receipt (lock the upload, mark the row stored, bump the counters, maybe start the assembly).
    The counters move only when this request's UPDATE turns the row from unstored to stored, so
    concurrent identical resends count once.
    """
    now = now or timezone.now()
    data = decode_chunk(request.data)
    digest = hashlib.sha256(data).hexdigest()
    if request.chunk_sha256 and request.chunk_sha256.lower() != digest:
        raise Rejected("chunk_sha256 does not match the decoded data.", code="checksum-mismatch", errors={"chunk_sha256": ["Mismatch."]})
    total = request.total_chunks
    if total is not None and not 0 <= request.chunk_index < total:
        raise InvalidInput(
            "chunk_index is outside [0, total_chunks).", code="chunk-out-of-range", errors={"chunk_index": ["Out of range."]}
        )
    backend = get_backend()
    created = False
    with transaction.atomic():
        if request.upload_id is None:
            upload = _create_upload(tenant_id, request, actor, now)
            if len(data) > settings.AION_MEMORY_MAX_UPLOAD_BYTES:
                raise TooLarge("The upload would exceed AION_MEMORY_MAX_UPLOAD_BYTES.", code="upload-too-large")
            upload.multipart_upload_id = backend.begin(upload)
            upload.save(force_insert=True)
            created = True
            audit.record(
                "memory.upload.created", "memory.upload", upload.id, actor=actor, tenant_id=tenant_id, after=_upload_summary(upload)
            )
            existing = None  # a new upload has no chunks yet
        else:
            upload = _lock_upload(tenant_id, request.upload_id)
            _check_consistent(upload, request, now)
            if not 0 <= request.chunk_index < upload.total_chunks:
                raise InvalidInput(
                    "chunk_index is outside [0, total_chunks).", code="chunk-out-of-range", errors={"chunk_index": ["Out of range."]}
                )
            existing = UploadChunk.objects.filter(upload=upload, index=request.chunk_index).first()
            if existing is not None and existing.sha256 != digest:
                raise Conflict(
                    f"Chunk {request.chunk_index} is already stored with different bytes; the stored chunk is kept.",
                    code="chunk-conflict",
                )
            if existing is not None and existing.stored:
                return ChunkResult(upload, created, duplicate=True)
            if existing is None:
                claimed = UploadChunk.objects.filter(upload=upload).aggregate(n=Sum("size"))["n"] or 0
                if claimed + len(data) > settings.AION_MEMORY_MAX_UPLOAD_BYTES:
                    raise TooLarge("The upload would exceed AION_MEMORY_MAX_UPLOAD_BYTES.", code="upload-too-large")
        if existing is None:
            # The claim: a concurrent sender of different bytes now gets 409 instead of overwriting.
            existing = UploadChunk.objects.create(upload=upload, index=request.chunk_index, size=len(data), sha256=digest, received_at=now)
    try:
        storage_key, part_etag = backend.write_chunk(
            upload,
            request.chunk_index,
            data,
            may_be_part=backend.name == "s3" and _may_be_direct_part(upload, request.chunk_index, len(data)),
        )
    except Exception as exc:
        logger.exception("memory chunk write failed", extra={"upload_id": str(upload.id), "chunk_index": request.chunk_index})
        UploadChunk.objects.filter(pk=existing.pk, stored=False).delete()
        raise Unavailable(
            f"The chunk could not be stored ({type(exc).__name__}); resend it.", code="storage-unavailable", upload_id=str(upload.id)
        ) from exc
    INGEST_BYTES.inc(len(data))
    with transaction.atomic():
        upload = _lock_upload(tenant_id, upload.id)
        marked = UploadChunk.objects.filter(pk=existing.pk, stored=False).update(stored=True, storage_key=storage_key, part_etag=part_etag)
        changed = ["updated_at"]
        if marked:
            upload.received_chunks += 1
            upload.bytes_received += existing.size
            changed += ["received_chunks", "bytes_received"]
        upload.updated_at = timezone.now()
        if upload.received_chunks == upload.total_chunks and upload.state == UploadState.RECEIVING:
            upload.state = UploadState.ASSEMBLING
            upload.step = PipelineStep.ASSEMBLE
            changed += ["state", "step"]
            _record_upload_change(upload, "memory.upload.received", actor, before_state=UploadState.RECEIVING)
            _enqueue("assemble_upload", upload.id)
        upload.save(update_fields=changed)
    return ChunkResult(upload, created, duplicate=False)


# --- pipeline -------------------------------------------------------------------------------------


def _fail(upload_id: Any, step: str, reason: str) -> None:
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None or upload.state in (UploadState.ABORTED, UploadState.COMPLETE):
            return
        before = upload.state
        upload.state = UploadState.FAILED
        upload.step = step
        upload.failure_reason = reason[:2000]
        upload.updated_at = timezone.now()
        upload.save()
        actor = system_principal(upload.tenant_id, "memory-pipeline")
        _record_upload_change(upload, "memory.upload.failed", actor, before_state=before, publish_event=True, result=AuditResult.FAILED)


def _set_step(upload_id: Any, step: str, **fields: Any) -> None:
    Upload.objects.filter(pk=upload_id).update(step=step, updated_at=timezone.now(), **fields)


def assemble_upload(upload_id: Any) -> bool:
    """Chunks -> one object with its sha256 and size, then hand over to the pipeline."""
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None or upload.state != UploadState.ASSEMBLING:
        return False
    backend = get_backend()
    chunks = _chunk_refs(upload)
    if len(chunks) != upload.total_chunks:
        _fail(upload.id, PipelineStep.ASSEMBLE, "not every chunk is stored")
        return False
    started = time.perf_counter()
    try:
        assembled = backend.assemble(upload, chunks)
    except AssemblyError as exc:
        _fail(upload.id, PipelineStep.ASSEMBLE, str(exc))
        return False
    except Exception as exc:
        logger.exception("memory assembly failed", extra={"upload_id": str(upload.id)})
        _fail(upload.id, PipelineStep.ASSEMBLE, f"{type(exc).__name__}: {exc}")
        return False
    STEP_DURATION.labels(PipelineStep.ASSEMBLE).observe(time.perf_counter() - started)
    with transaction.atomic():
        locked = Upload.objects.select_for_update().get(pk=upload.id)
        if locked.state != UploadState.ASSEMBLING:
            return False
        locked.checksum = assembled.checksum
        locked.size_bytes = assembled.size
        locked.assembled_at = timezone.now()
        locked.state = UploadState.PROCESSING
        locked.multipart_upload_id = ""
        locked.updated_at = timezone.now()
        locked.save()
        actor = system_principal(locked.tenant_id, "memory-pipeline")
        _record_upload_change(locked, "memory.upload.assembled", actor, before_state=UploadState.ASSEMBLING)
        _enqueue("process_upload", locked.id)
    try:
        backend.discard_chunks(upload, chunks)
    except Exception:
        logger.warning("could not delete assembled chunks", extra={"upload_id": str(upload.id)}, exc_info=True)
    return True


def process_upload(upload_id: Any) -> bool:
    """Run the profile's steps (extract, chunk, embed, store) on the assembled object."""
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None or upload.state != UploadState.PROCESSING:
        return False
    config = upload.profile_config
    steps = [s for s in config.get("pipeline") or [] if s in PROFILE_STEPS]
    extracted = ""
    segments: list[str] = []
    vectors_out: list[list[float]] = []
    collection = ""
    stored = 0
    for step in steps:
        _set_step(upload.id, step)
        started = time.perf_counter()
        try:
            if step == PipelineStep.EXTRACT:
                with get_backend().open_object(upload.object_key) as source:
                    extracted = text.extract_text(source, upload.content_type, upload.filename)
            elif step == PipelineStep.CHUNK:
                segments = text.chunk_text(extracted, int(config["chunk_size"]), int(config["chunk_overlap"]))
                _set_step(upload.id, step, segment_count=len(segments))
            elif step == PipelineStep.EMBED:
                vectors_out = embeddings.get_model(config["embedding_model"]).embed(segments) if segments else []
            elif step == PipelineStep.STORE:
                collection = vectors.collection_name(upload.tenant_id, config["name"], config["embedding_model"])
                stored = vectors.upsert_segments(
                    collection,
                    upload.id,
                    vectors_out,
                    segments,
                    upload.metadata,
                    {"filename": upload.filename, "profile_version": upload.profile_version},
                )
                VECTORS_STORED.inc(stored)
        except (text.UnsupportedContentType, text.ExtractionError, embeddings.EmbeddingError, vectors.VectorStoreUnavailable) as exc:
            _fail(upload.id, step, str(exc))
            return False
        except Exception as exc:
            logger.exception("memory pipeline step failed", extra={"upload_id": str(upload.id), "step": step})
            _fail(upload.id, step, f"{type(exc).__name__}: {exc}")
            return False
        finally:
            STEP_DURATION.labels(step).observe(time.perf_counter() - started)
    with transaction.atomic():
        locked = Upload.objects.select_for_update().get(pk=upload.id)
        if locked.state != UploadState.PROCESSING:
            return False
        locked.state = UploadState.COMPLETE
        locked.segment_count = len(segments)
        locked.vector_count = stored
        locked.collection = collection
        locked.failure_reason = ""
        locked.completed_at = locked.updated_at = timezone.now()
        locked.save()
        actor = system_principal(locked.tenant_id, "memory-pipeline")
        _record_upload_change(locked, "memory.upload.completed", actor, before_state=UploadState.PROCESSING, publish_event=True)
    return True


def reprocess_upload(upload: Upload, *, actor: Any, now: datetime | None = None) -> Upload:
    """Retry a failed (or re-run a complete) upload: assembly again if it never finished, else the pipeline."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_upload(upload.tenant_id, upload.id)
        stuck = locked.state in (UploadState.ASSEMBLING, UploadState.PROCESSING) and locked.updated_at <= now - timedelta(
            minutes=settings.AION_MEMORY_STUCK_AFTER_MINUTES
        )
        if locked.state not in (UploadState.FAILED, UploadState.COMPLETE) and not stuck:
            raise Conflict(f"An upload in state {locked.state!r} cannot be reprocessed.", code="invalid-state", state=locked.state)
        if locked.assembled_at is None and locked.received_chunks < locked.total_chunks:
            raise Conflict("Not every chunk has been received; resend the missing chunks.", code="invalid-state")
        before = locked.state
        locked.state = UploadState.PROCESSING if locked.assembled_at else UploadState.ASSEMBLING
        locked.step = "" if locked.assembled_at else PipelineStep.ASSEMBLE
        locked.failure_reason = ""
        locked.updated_at = now
        locked.save()
        _record_upload_change(locked, "memory.upload.reprocess", actor, before_state=before)
        _enqueue("process_upload" if locked.assembled_at else "assemble_upload", locked.id)
    return locked


def abort_upload(upload: Upload, *, actor: Any, reason: str) -> bool:
    """Abort an incomplete upload and remove its chunks and multipart upload."""
    return _abort_upload(upload, actor=actor, reason=reason)[0]


def _abort_upload(upload: Upload, *, actor: Any, reason: str) -> tuple[bool, bool]:
    """(the upload was aborted, a multipart upload was aborted at the store)."""
    with transaction.atomic():
        locked = Upload.objects.select_for_update().filter(pk=upload.pk).first()
        if locked is None or locked.state not in ACTIVE_STATES:
            return False, False
        chunks = _chunk_refs(locked)
        before = locked.state
        locked.state = UploadState.ABORTED
        locked.failure_reason = reason
        locked.aborted_at = locked.updated_at = timezone.now()
        locked.save()
        _record_upload_change(locked, "memory.upload.aborted", actor, before_state=before, publish_event=True, metadata={"reason": reason})
    return True, get_backend().abort(locked, chunks)


def delete_document(upload: Upload, *, actor: Any, reason: str) -> None:
    """Remove a document everywhere: its object, its vectors and its rows (audited)."""
    backend = get_backend()
    if upload.collection:
        vectors.delete_upload_vectors(upload.collection, upload.id)
    if upload.size_bytes is not None:
        backend.delete_object(upload.object_key)
    chunks = _chunk_refs(upload)
    if chunks or upload.multipart_upload_id:
        backend.abort(upload, chunks)
    with transaction.atomic():
        summary = _upload_summary(upload)
        Upload.objects.filter(pk=upload.pk).delete()
        audit.record(
            "memory.upload.deleted",
            "memory.upload",
            upload.id,
            actor=actor,
            tenant_id=upload.tenant_id,
            before=summary,
            metadata={"reason": reason},
        )
        publish(MEMORY_UPLOADS, str(upload.id), summary, event_type="memory.upload.deleted", tenant_id=upload.tenant_id, actor=actor)


# --- beat jobs ------------------------------------------------------------------------------------


def apply_retention(now: datetime | None = None) -> int:
    """Delete documents older than their profile's current ``retention_days``."""
    now = now or timezone.now()
    deleted = 0
    for profile in MemoryProfile.objects.filter(retention_days__isnull=False):
        cutoff = now - timedelta(days=int(profile.retention_days or 0))
        expired = Upload.objects.filter(profile=profile, created_at__lt=cutoff).exclude(state__in=ACTIVE_STATES)
        for upload in expired.iterator():
            actor = system_principal(upload.tenant_id, "memory-retention")
            try:
                delete_document(upload, actor=actor, reason=f"older than {profile.retention_days} days (profile {profile.name})")
                deleted += 1
            except Exception:
                logger.exception("retention could not delete a memory document", extra={"upload_id": str(upload.id)})
    return deleted


def abort_stale_uploads(now: datetime | None = None) -> int:
    """Abort incomplete uploads past ``expires_at`` (AION_MEMORY_UPLOAD_TTL_HOURS, 72 h by default).

    This is the 72 h multipart clean-up on every store (MinIO ignores AbortIncompleteMultipartUpload);
    each AbortMultipartUpload it makes counts in ``aion_storage_multipart_aborted_total``.
    """
    now = now or timezone.now()
    aborted = 0
    for upload in Upload.objects.filter(state=UploadState.RECEIVING, expires_at__lte=now).iterator():
        actor = system_principal(upload.tenant_id, "memory-abort-stale")
        try:
            done, at_store = _abort_upload(upload, actor=actor, reason=f"incomplete after {settings.AION_MEMORY_UPLOAD_TTL_HOURS} h")
            if at_store:
                STORAGE_MULTIPART_ABORTED.inc()
            if done:
                aborted += 1
        except Exception:
            logger.exception("could not abort a stale memory upload", extra={"upload_id": str(upload.id)})
    return aborted


# --- search ---------------------------------------------------------------------------------------


# Scores are cosine similarities (-1..1). Under hash-384 a segment that shares no word or word pair with
# the query scores 0 (or +-1/sqrt(query features x segment features) on a bucket collision), while a one-word
# literal match in a default 1000-character segment scores ~0.06: 0.03 drops the first and keeps the second.
# Semantic models separate more widely (MiniLM: unrelated <= 0.17, related >= 0.42, measured); see docs/memory.md.
DEFAULT_MIN_SCORE = 0.03


def search(
    tenant_id: str, profile_name: str, query: str, top_k: int, metadata_filter: dict[str, Any], *, min_score: float = DEFAULT_MIN_SCORE
) -> list[dict[str, Any]]:
    """The TOP_K segments nearest to QUERY, best first, among those scoring at least MIN_SCORE."""
    profile = MemoryProfile.objects.filter(tenant_id=tenant_id, name=profile_name).first()
    if profile is None:
        raise InvalidInput(f"Unknown profile {profile_name!r}.", code="unknown-profile", errors={"profile": ["Unknown profile."]})
    try:
        [vector] = embeddings.get_model(profile.embedding_model).embed([query])
        collection = vectors.collection_name(tenant_id, profile.name, profile.embedding_model)
        points = vectors.search(collection, vector, top_k, metadata_filter)
    except embeddings.EmbeddingError as exc:
        raise Unavailable(f"The embedding model is unavailable: {exc}", code="embeddings-unavailable") from exc
    except vectors.VectorStoreUnavailable as exc:
        raise Unavailable(str(exc), code="vector-store-unavailable") from exc
    hits = []
    for point in points:
        if float(point.score) < min_score:
            break  # best first: the rest score lower still
        payload = point.payload or {}
        hits.append(
            {
                "score": round(float(point.score), 6),
                "upload_id": payload.get("upload_id"),
                "segment_index": payload.get("segment_index"),
                "text": payload.get("text", ""),
                "filename": payload.get("filename", ""),
                "metadata": payload.get("metadata") or {},
            }
        )
    return hits
