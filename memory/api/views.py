"""The memory REST API: ingest, profiles, status, reprocess and search. Views stay thin: services do the work."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.pagination import Pagination
from aion.api.views import APIView
from aion.problems import Problem
from aion.roles import Role
from memory import embeddings, services
from memory.api.parsers import OCTET_STREAM, ChunkBytesParser, IngestJSONParser
from memory.api.serializers import (
    IngestFieldsSerializer,
    IngestResponseSerializer,
    IngestSerializer,
    ProfileCatalogSerializer,
    ProfileOutSerializer,
    ProfileSerializer,
    SearchResponseSerializer,
    SearchSerializer,
    StatusQuerySerializer,
    StatusResponseSerializer,
    UploadProgressSerializer,
    upload_progress,
)
from memory.choices import ACTIVE_STATES
from memory.models import MemoryProfile, Upload

# Base64 inflates by 4/3; the JSON envelope (ids, metadata) gets 64 KiB of slack.
INGEST_MAX_BODY_BYTES = settings.AION_MEMORY_MAX_CHUNK_BYTES * 4 // 3 + 64 * 1024


def tenant_of(request: Request) -> str:
    return str(request.user.tenant_id)  # type: ignore[union-attr]  # a Principal after authentication


def _json_object(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise Problem(400, "The body must be a JSON object.", slug="malformed-request")
    return request.data


def _octet_stream_fields(request: Request) -> dict[str, Any]:
    """The fields of an octet-stream chunk: the query string, plus the digest from ``X-Chunk-Sha256``."""
    fields: dict[str, Any] = dict(request.query_params.items())
    header = request.headers.get("X-Chunk-Sha256", "")
    if header:
        if fields.get("chunk_sha256", header).lower() != header.lower():
            raise Problem(400, "X-Chunk-Sha256 and chunk_sha256 differ.", errors={"chunk_sha256": ["Differs from X-Chunk-Sha256."]})
        fields["chunk_sha256"] = header
    if "metadata" in fields:
        try:
            fields["metadata"] = json.loads(fields["metadata"])
        except ValueError:
            raise Problem(400, "metadata must be a JSON object.", errors={"metadata": ["Invalid JSON."]}) from None
    return fields


class IngestView(APIView):
    """POST /v1/memory/ingest: one chunk of a resumable upload.

    Two forms: a JSON body with the chunk in base64 (``data``), or the chunk's bytes as an
    ``application/octet-stream`` body with the same fields in the query string (no base64 or
    JSON work, 3/4 of the bytes on the wire). See docs/memory.md.
    """

    required_role = Role.MEMORY_WRITER
    rate_limit_class = "ingest"
    max_body_bytes = INGEST_MAX_BODY_BYTES
    parser_classes = [IngestJSONParser, ChunkBytesParser]

    @extend_schema(
        request={"application/json": IngestSerializer, OCTET_STREAM: OpenApiTypes.BINARY},
        responses={200: IngestResponseSerializer, 201: IngestResponseSerializer},
        description="The octet-stream form takes the other fields in the query string (see IngestFieldsSerializer).",
    )
    def post(self, request: Request) -> Response:
        if (request.content_type or "").split(";")[0].strip().lower() == OCTET_STREAM:
            serializer: IngestFieldsSerializer = IngestFieldsSerializer(data=_octet_stream_fields(request))
            serializer.is_valid(raise_exception=True)
            data: bytes | str = request.data if isinstance(request.data, bytes) else b""  # an empty body parses as {}
        else:
            serializer = IngestSerializer(data=_json_object(request))
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data["data"]
        fields = serializer.validated_data
        chunk = services.ChunkRequest(
            upload_id=fields.get("upload_id"),
            chunk_index=fields["chunk_index"],
            total_chunks=fields.get("total_chunks"),
            data=data,
            chunk_sha256=fields.get("chunk_sha256") or "",
            profile=fields.get("profile") or "",
            filename=fields.get("filename") or "",
            content_type=fields.get("content_type") or "",
            metadata=fields.get("metadata"),
        )
        result = services.receive_chunk(tenant_of(request), chunk, actor=request.user)
        body = upload_progress(result.upload)
        body["chunk"] = {"index": chunk.chunk_index, "status": "duplicate" if result.duplicate else "stored"}
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class ProfileView(APIView):
    """POST /v1/memory/profile creates or updates by name; GET lists the catalog."""

    required_roles = {"GET": Role.MEMORY_READER, "POST": Role.MEMORY_WRITER, "*": Role.MEMORY_WRITER}

    @extend_schema(responses=ProfileCatalogSerializer)
    def get(self, request: Request) -> Response:
        profiles = MemoryProfile.objects.for_tenant(tenant_of(request))
        return Response({"profiles": ProfileOutSerializer(profiles, many=True).data, "embedding_models": embeddings.available_models()})

    @extend_schema(request=ProfileSerializer, responses={200: ProfileOutSerializer, 201: ProfileOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = ProfileSerializer(data=_json_object(request))
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        name = fields.pop("name")
        profile, created = services.save_profile(tenant_of(request), name, fields, actor=request.user)
        return Response(ProfileOutSerializer(profile).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class StatusView(APIView):
    """GET /v1/memory/status: uploads (filter by upload_id, state, profile; paginated) and the profile catalog."""

    required_role = Role.MEMORY_READER

    @extend_schema(
        parameters=[StatusQuerySerializer, OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses=StatusResponseSerializer,
    )
    def get(self, request: Request) -> Response:
        query = StatusQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        tenant = tenant_of(request)
        uploads = Upload.objects.for_tenant(tenant).select_related("profile").order_by("-created_at", "id")
        if "upload_id" in filters:
            uploads = uploads.filter(pk=filters["upload_id"])
        if filters.get("state"):
            uploads = uploads.filter(state__in=filters["state"])
        if filters.get("profile"):
            uploads = uploads.filter(profile__name=filters["profile"])
        paginator = Pagination()
        page = paginator.paginate_queryset(uploads, request, view=self) or []
        profiles = MemoryProfile.objects.for_tenant(tenant)
        return Response(
            {
                "count": paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "active_uploads": Upload.objects.for_tenant(tenant).filter(state__in=ACTIVE_STATES).count(),
                "uploads": [upload_progress(upload) for upload in page],
                "profiles": ProfileOutSerializer(profiles, many=True).data,
                "embedding_models": embeddings.available_models(),
            }
        )


class ReprocessView(APIView):
    """POST /v1/memory/uploads/{id}/reprocess: retry the failed step (or re-run a complete upload)."""

    required_role = Role.MEMORY_WRITER

    @extend_schema(request=None, responses={202: UploadProgressSerializer})
    def post(self, request: Request, upload_id: Any) -> Response:
        upload = Upload.objects.for_tenant(tenant_of(request)).filter(pk=upload_id).first()
        if upload is None:
            raise Problem(404, "No such upload.", slug="upload-not-found")
        upload = services.reprocess_upload(upload, actor=request.user)
        return Response(upload_progress(upload), status=status.HTTP_202_ACCEPTED)


class SearchView(APIView):
    """POST /v1/memory/search: the top_k segments nearest to the query in a profile's collection, scoring at least min_score."""

    required_role = Role.MEMORY_READER

    @extend_schema(request=SearchSerializer, responses=SearchResponseSerializer)
    def post(self, request: Request) -> Response:
        serializer = SearchSerializer(data=_json_object(request))
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        hits = services.search(
            tenant_of(request), fields["profile"], fields["query"], fields["top_k"], fields["filter"], min_score=fields["min_score"]
        )
        return Response({"profile": fields["profile"], "query": fields["query"], "hits": hits})
