"""Models of the memory app: profiles, uploads (the documents they become) and received chunks."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from aion.tenancy import TenantOwned
from memory.choices import DEFAULT_PIPELINE, UploadState


def default_pipeline() -> list[str]:
    return list(DEFAULT_PIPELINE)


class MemoryProfile(TenantOwned):
    """How a tenant's uploads are processed. Updating it bumps ``version``; uploads keep a snapshot."""

    name = models.SlugField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    embedding_model = models.CharField(max_length=200, default="hash-384")
    chunk_size = models.PositiveIntegerField(default=1000)
    chunk_overlap = models.PositiveIntegerField(default=125)
    pipeline = models.JSONField(default=default_pipeline)
    retention_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty = keep forever")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "name"], name="memory_profile_unique_name_per_tenant")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.name} v{self.version}"

    def snapshot(self) -> dict[str, Any]:
        """The settings an upload is processed with (stored on the upload, so later edits do not touch it)."""
        return {
            "name": self.name,
            "version": self.version,
            "embedding_model": self.embedding_model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "pipeline": list(self.pipeline),
            "retention_days": self.retention_days,
        }


class Upload(TenantOwned):
    """One resumable upload and, once assembled, the document stored in object storage and Qdrant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    profile = models.ForeignKey(MemoryProfile, on_delete=models.PROTECT, related_name="uploads")
    profile_version = models.PositiveIntegerField()
    profile_config = models.JSONField(default=dict, help_text="The profile as it was when the upload started")
    state = models.CharField(max_length=16, choices=UploadState.choices, default=UploadState.RECEIVING, db_index=True)
    step = models.CharField(max_length=16, blank=True, default="", help_text="The pipeline step running or last attempted")
    failure_reason = models.TextField(blank=True, default="")
    filename = models.CharField(max_length=255, blank=True, default="")
    content_type = models.CharField(max_length=200, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    total_chunks = models.PositiveIntegerField()
    received_chunks = models.PositiveIntegerField(default=0)
    bytes_received = models.BigIntegerField(default=0)
    object_key = models.CharField(max_length=512)
    multipart_upload_id = models.CharField(max_length=1024, blank=True, default="", help_text="S3 multipart upload id")
    checksum = models.CharField(max_length=64, blank=True, default="", help_text="sha256 of the assembled object")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    segment_count = models.PositiveIntegerField(default=0)
    vector_count = models.PositiveIntegerField(default=0)
    collection = models.CharField(max_length=255, blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(help_text="Incomplete uploads are aborted after this")
    assembled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    aborted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant_id", "state"], name="memory_upload_tenant_state")]

    def __str__(self) -> str:
        return f"{self.id} ({self.state})"


class UploadChunk(models.Model):
    """A received chunk: its digest (to tell a resend from a conflict) and where its bytes went.

    The row outlives the bytes (they are deleted after assembly) so a late resend is still
    recognised as identical or conflicting.
    """

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    stored = models.BooleanField(default=False, help_text="False while the bytes are being written")
    storage_key = models.CharField(max_length=512, blank=True, default="", help_text="Buffered chunk object or local file")
    part_etag = models.CharField(max_length=200, blank=True, default="", help_text="ETag when written as an S3 part")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["upload", "index"]
        constraints = [models.UniqueConstraint(fields=["upload", "index"], name="memory_chunk_unique_index")]

    def __str__(self) -> str:
        return f"{self.upload_id}#{self.index}"
