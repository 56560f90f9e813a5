"""The hooks REST API: the signed approval hook, endpoints, deliveries and hook sources.

Views are thin: they validate input and call ``hooks.services``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import status as http
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.etag import check_if_match, etag_for
from aion.api.views import APIView, GenericViewSet, ModelViewSet
from aion.problems import Problem, domain_status
from aion.ratelimit import client_ip
from aion.rbac import Role
from hooks import services, signing
from hooks.api.serializers import (
    ApprovalHookSerializer,
    HookSourceSerializer,
    RecoverSerializer,
    RotateSecretSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSecretSerializer,
    WebhookEndpointSerializer,
    parse_approval_body,
)
from hooks.filtersets import WebhookDeliveryFilterSet
from hooks.models import HookSource, WebhookDelivery, WebhookEndpoint

HOOK_SIGNATURE = "hook-signature"


def principal(request: Request) -> Any:
    """The authenticated ``aion.auth.principal.Principal`` (DRF types request.user as a Django user)."""
    return request.user  # the role marker of routes authenticated by an HMAC signature, not a credential


def _requested_grace_hours(request: Request) -> float | None:
    """The optional ``grace_hours`` of a rotate-secret body (a problem 400 when it is invalid)."""
    serializer = RotateSecretSerializer(data=request.data if isinstance(request.data, dict) else {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data.get("grace_hours")


class SignatureCheckedByView(BasePermission):
    """The approval hook has no API credential: the view verifies the signature over the raw body itself
    (``services.verify_inbound``), answering 400/401/403/429 problems and recording incidents."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return True


class ApprovalHookView(APIView):
    """POST /v1/hooks/approval: a signed approve/reject decision for a kernel proposal."""

    required_role = HOOK_SIGNATURE
    authentication_classes: list = []
    permission_classes = [SignatureCheckedByView]
    max_body_bytes = settings.AION_HOOK_MAX_BODY_BYTES
    rate_limit_class = "hooks"

    @extend_schema(
        request=ApprovalHookSerializer,
        responses={200: OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(signing.SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True, description="t=<unix>,v1=<hex HMAC>"),
            OpenApiParameter(signing.TENANT_HEADER, str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(signing.DELIVERY_HEADER, str, OpenApiParameter.HEADER, required=True, description="Idempotency key"),
        ],
        description="No API credential: the HMAC signature over the raw body is the credential (docs/webhooks.md).",
    )
    def post(self, request: Request) -> Response:
        body = request._request.body  # the raw bytes the signature covers, before any parsing
        result = services.receive_approval_hook(
            headers=dict(request.headers), body=body, source_ip=client_ip(request),
            parse_body=parse_approval_body, refusal_status=domain_status,
        )  # fmt: skip
        headers = {"Idempotent-Replay": "true"} if result.replay else {}
        if result.status >= 400:
            return Response(
                {"type": "urn:aion:problem:hook-action-refused", "title": "Hook action refused", **result.body},
                status=result.status, headers=headers, content_type="application/problem+json",
            )  # fmt: skip
        return Response(result.body, status=result.status, headers=headers)


class WebhookEndpointViewSet(ModelViewSet):
    """CRUD for outbound endpoints, plus ping and secret rotation. The secret is returned once."""

    required_role = Role.HOOKS_ADMIN
    serializer_class = WebhookEndpointSerializer
    queryset = WebhookEndpoint.objects.all()

    def _with_secret(self, endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
        """The endpoint plus its new secret in both forms (raw and Standard Webhooks ``whsec_``)."""
        return WebhookEndpointSecretSerializer(endpoint, context={**self.get_serializer_context(), "secret": secret}).data

    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointSecretSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        endpoint, secret = services.create_endpoint(
            tenant_id=principal(request).tenant_id, url=data["url"], event_types=data["event_types"],
            description=data.get("description", ""), enabled=data.get("enabled", True), actor=request.user,
        )  # fmt: skip
        body = self._with_secret(endpoint, secret)
        return Response(body, status=http.HTTP_201_CREATED, headers={"ETag": etag_for(self.get_serializer(endpoint).data)})

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.get_serializer(self.get_object()).data
        return Response(data, headers={"ETag": etag_for(data)})

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        check_if_match(request, etag_for(self.get_serializer(endpoint).data))
        serializer = self.get_serializer(endpoint, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        endpoint = services.update_endpoint(endpoint, dict(serializer.validated_data), actor=request.user)
        data = self.get_serializer(endpoint).data
        return Response(data, headers={"ETag": etag_for(data)})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        check_if_match(request, etag_for(self.get_serializer(endpoint).data))
        services.delete_endpoint(endpoint, actor=request.user)
        return Response(status=http.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=WebhookDeliverySerializer)
    @action(detail=True, methods=["post"])
    def ping(self, request: Request, pk: str | None = None) -> Response:
        delivery = services.send_test_ping(self.get_object(), actor=request.user)
        return Response(WebhookDeliverySerializer(delivery).data, status=http.HTTP_200_OK)

    @extend_schema(request=RotateSecretSerializer, responses=WebhookEndpointSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        grace_hours = _requested_grace_hours(request)
        endpoint = self.get_object()
        secret = services.rotate_endpoint_secret(endpoint, actor=request.user, grace_hours=grace_hours)
        endpoint.refresh_from_db()
        return Response(self._with_secret(endpoint, secret))


class WebhookDeliveryViewSet(GenericViewSet):
    """Deliveries with their attempts; redeliver one, recover every failed one since a time."""

    required_role = Role.HOOKS_ADMIN
    serializer_class = WebhookDeliverySerializer
    queryset = WebhookDelivery.objects.prefetch_related("attempt_log")
    filterset_class = WebhookDeliveryFilterSet

    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        delivery = services.redeliver(self.get_object(), actor=request.user)
        return Response(self.get_serializer(delivery).data, status=http.HTTP_202_ACCEPTED)

    @action(detail=False, methods=["post"])
    def recover(self, request: Request) -> Response:
        serializer = RecoverSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        endpoint = None
        if serializer.validated_data.get("endpoint"):
            endpoint = get_object_or_404(WebhookEndpoint, pk=serializer.validated_data["endpoint"], tenant_id=principal(request).tenant_id)
        ids = services.recover_failed(
            tenant_id=principal(request).tenant_id, since=serializer.validated_data["since"], endpoint=endpoint, actor=request.user
        )
        return Response({"recovered": len(ids), "delivery_ids": ids}, status=http.HTTP_202_ACCEPTED)


class HookSourceViewSet(GenericViewSet):
    """Inbound hook sources of the caller's tenant: create (secret shown once), enable/disable, rotate."""

    required_role = Role.HOOKS_ADMIN
    serializer_class = HookSourceSerializer
    queryset = HookSource.objects.prefetch_related("secrets")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        source, secret = services.create_hook_source(
            tenant_id=principal(request).tenant_id, name=data["name"], scopes=list(data["scopes"]),
            service_identity=data.get("service_identity", ""), actor=request.user,
        )  # fmt: skip
        return Response({**self.get_serializer(source).data, "secret": secret}, status=http.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()
        enabled = request.data.get("enabled") if isinstance(request.data, dict) else None
        if not isinstance(enabled, bool):
            raise Problem(400, "Only 'enabled' (a boolean) can be changed.", slug="validation-error",
                          errors={"enabled": ["A boolean is required."]})  # fmt: skip
        source = services.set_hook_source_enabled(source, enabled, actor=request.user)
        return Response(self.get_serializer(source).data)

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        grace_hours = _requested_grace_hours(request)
        source = self.get_object()
        secret = services.rotate_hook_source_secret(source, actor=request.user, grace_hours=grace_hours)
        return Response({**self.get_serializer(HookSource.objects.get(pk=source.pk)).data, "secret": secret})
