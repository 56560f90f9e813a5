"""Serializers of the memory API: ingest chunks, profiles, status rows and search."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from memory import embeddings
from memory.choices import DEFAULT_PIPELINE, PROFILE_STEPS, UploadState
from memory.models import MemoryProfile, Upload
from memory.services import DEFAULT_MIN_SCORE, MAX_TOTAL_CHUNKS, compact_ranges, missing_indices, upload_identity

_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def validate_metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be an object.")
    if len(value) > 64:
        raise serializers.ValidationError("At most 64 keys.")
    for key in value:
        if not _METADATA_KEY.match(str(key)):
            raise serializers.ValidationError(f"Invalid key {key!r} (letters, digits and ._- only).")
    return value


@extend_schema_field(OpenApiTypes.BYTE)
class Base64TextField(serializers.Field):
    """A string, checked only for type here: CharField's per-character validators cost seconds on 11 MiB.

    The base64 itself is decoded (and rejected with 400 if invalid) by ``services.decode_chunk``.
    """

    default_error_messages = {"invalid": "Must be a base64 string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> str:
        return str(value)


def check_metadata(value: Any) -> None:
    validate_metadata(value)


class IngestFieldsSerializer(serializers.Serializer):
    """The fields of a chunk besides its bytes: the JSON body's, or an octet-stream request's query string."""

    upload_id = serializers.UUIDField(required=False, allow_null=True)
    chunk_index = serializers.IntegerField(min_value=0)
    total_chunks = serializers.IntegerField(min_value=1, max_value=MAX_TOTAL_CHUNKS, required=False)
    chunk_sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", required=False, allow_blank=True)
    profile = serializers.SlugField(max_length=64, required=False, allow_blank=True)
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True)
    content_type = serializers.CharField(max_length=200, required=False, allow_blank=True)
    metadata = serializers.JSONField(required=False, validators=[check_metadata])


class IngestSerializer(IngestFieldsSerializer):
    """The JSON form: the fields plus ``data``, the chunk in standard base64."""

    data = Base64TextField()  # type: ignore[assignment]  # a field, not .data


class ProfileSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    embedding_model = serializers.CharField(max_length=200, required=False, default=embeddings.HASH_MODEL)
    chunk_size = serializers.IntegerField(min_value=128, max_value=65536, required=False, default=1000)
    chunk_overlap = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    pipeline = serializers.ListField(child=serializers.CharField(max_length=32), required=False, allow_empty=False)
    retention_days = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate_embedding_model(self, value: str) -> str:
        problem = embeddings.validate_model_key(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_pipeline(self, value: list[str]) -> list[str]:
        known = [step.value for step in PROFILE_STEPS]
        unknown = [step for step in value if step not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown steps {unknown}; known steps are {known}.")
        if len(set(value)) != len(value):
            raise serializers.ValidationError("A step may appear only once.")
        # Each step needs the one before it: the list must be a prefix of extract, chunk, embed, store.
        if value != known[: len(value)]:
            raise serializers.ValidationError(f"Steps must run in order and each needs the previous one: {known}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("chunk_overlap") is None:
            attrs["chunk_overlap"] = attrs["chunk_size"] // 8
        elif attrs["chunk_overlap"] >= attrs["chunk_size"]:
            raise serializers.ValidationError({"chunk_overlap": ["Must be smaller than chunk_size."]})
        attrs.setdefault("pipeline", list(DEFAULT_PIPELINE))
        if not attrs.get("pipeline"):
            attrs["pipeline"] = list(DEFAULT_PIPELINE)
        return attrs


class ProfileOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = MemoryProfile
        fields = [
            "name",
            "version",
            "embedding_model",
            "chunk_size",
            "chunk_overlap",
            "pipeline",
            "retention_days",
            "description",
            "created_at",
            "updated_at",
        ]


def upload_progress(upload: Upload, *, now: Any = None) -> dict[str, Any]:
    """The ingest response and a status row: progress while receiving, checksum and counts once assembled."""
    from django.utils import timezone

    now = now or timezone.now()
    missing = missing_indices(upload) if upload.state == UploadState.RECEIVING else []
    body: dict[str, Any] = {
        **upload_identity(upload),
        "received_chunks": upload.received_chunks,
        "total_chunks": upload.total_chunks,
        "missing": compact_ranges(missing),
        "bytes_received": upload.bytes_received,
        "percent_complete": round(100.0 * upload.received_chunks / upload.total_chunks, 1) if upload.total_chunks else 0.0,
        "age_seconds": max(0, int((now - upload.created_at).total_seconds())),
        "created_at": upload.created_at.isoformat(),
        "expires_at": upload.expires_at.isoformat(),
        "step": upload.step,
        "metadata": upload.metadata,
    }
    if upload.size_bytes is not None:
        body.update(
            {
                "checksum": upload.checksum,
                "size_bytes": upload.size_bytes,
                "object_key": upload.object_key,
                "bucket": settings.AION_MEMORY_BUCKET,
            }
        )
    if upload.state in (UploadState.PROCESSING, UploadState.COMPLETE, UploadState.FAILED):
        body.update({"segment_count": upload.segment_count, "vector_count": upload.vector_count})
    if upload.completed_at:
        body["completed_at"] = upload.completed_at.isoformat()
    if upload.failure_reason:
        body["failure_reason"] = upload.failure_reason
    return body


class StatusQuerySerializer(serializers.Serializer):
    upload_id = serializers.UUIDField(required=False)
    state = serializers.CharField(required=False, help_text="One state or several, comma-separated")
    profile = serializers.SlugField(required=False)

    def validate_state(self, value: str) -> list[str]:
        states = [s.strip() for s in value.split(",") if s.strip()]
        unknown = [s for s in states if s not in UploadState.values]
        if unknown:
            raise serializers.ValidationError(f"Unknown states {unknown}; use {UploadState.values}.")
        return states


class SearchSerializer(serializers.Serializer):
    profile = serializers.SlugField(max_length=64)
    query = serializers.CharField(max_length=8000)
    top_k = serializers.IntegerField(min_value=1, required=False, default=5)
    filter = serializers.JSONField(required=False, default=dict)
    min_score = serializers.FloatField(
        min_value=-1.0,
        max_value=1.0,
        required=False,
        default=DEFAULT_MIN_SCORE,
        help_text=(
            f"Drop hits scoring below this cosine similarity (-1..1; default {DEFAULT_MIN_SCORE}, which drops hits that share "
            "nothing with the query under hash-384; -1 returns every hit). See docs/memory.md."
        ),
    )

    def validate_top_k(self, value: int) -> int:
        if value > settings.AION_MEMORY_SEARCH_MAX_TOP_K:
            raise serializers.ValidationError(f"At most {settings.AION_MEMORY_SEARCH_MAX_TOP_K}.")
        return value

    def validate_filter(self, value: Any) -> dict[str, Any]:
        validate_metadata(value)
        for key, item in value.items():
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise serializers.ValidationError(f"{key}: filter values must be strings or integers.")
        return dict(value)


# --- Response shapes (the OpenAPI document's; the views build these bodies as dicts) ------------------------


class UploadProgressSerializer(serializers.Serializer):
    """The shape of ``upload_progress``: always the first block; checksum and counts once assembled."""

    upload_id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=UploadState.choices)
    profile = serializers.CharField(allow_null=True)
    profile_version = serializers.IntegerField()
    filename = serializers.CharField(allow_blank=True)
    content_type = serializers.CharField(allow_blank=True)
    received_chunks = serializers.IntegerField()
    total_chunks = serializers.IntegerField(allow_null=True)
    missing = serializers.CharField(allow_blank=True, help_text="Missing chunk indices as ranges, e.g. '3-7,9'")
    bytes_received = serializers.IntegerField()
    percent_complete = serializers.FloatField()
    age_seconds = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    step = serializers.CharField(allow_blank=True)
    metadata = serializers.JSONField()
    checksum = serializers.CharField(required=False)
    size_bytes = serializers.IntegerField(required=False)
    object_key = serializers.CharField(required=False)
    bucket = serializers.CharField(required=False)
    segment_count = serializers.IntegerField(required=False, allow_null=True)
    vector_count = serializers.IntegerField(required=False, allow_null=True)
    completed_at = serializers.DateTimeField(required=False)
    failure_reason = serializers.CharField(required=False)


class ChunkOutcomeSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["stored", "duplicate"])


class IngestResponseSerializer(UploadProgressSerializer):
    chunk = ChunkOutcomeSerializer()


class ProfileCatalogSerializer(serializers.Serializer):
    profiles = ProfileOutSerializer(many=True)
    embedding_models = serializers.ListField(child=serializers.CharField())


class StatusResponseSerializer(ProfileCatalogSerializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    active_uploads = serializers.IntegerField()
    uploads = UploadProgressSerializer(many=True)


class SearchHitSerializer(serializers.Serializer):
    score = serializers.FloatField()
    upload_id = serializers.CharField(allow_null=True)
    segment_index = serializers.IntegerField(allow_null=True)
    text = serializers.CharField(allow_blank=True)
    filename = serializers.CharField(allow_blank=True)
    metadata = serializers.JSONField()


class SearchResponseSerializer(serializers.Serializer):
    profile = serializers.CharField()
    query = serializers.CharField()
    hits = SearchHitSerializer(many=True)
