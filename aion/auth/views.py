"""Public JWKS and the ``whoami`` endpoint."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.views import APIView
from aion.rbac import AUTHENTICATED


def jwks_view(request: HttpRequest) -> JsonResponse:
    """The active public keys (never private material, never retired keys)."""
    from aion.auth.jwt import active_public_keys

    response = JsonResponse({"keys": active_public_keys()})
    response["Cache-Control"] = "public, max-age=300"
    return response


jwks_view.required_role = "public"  # type: ignore[attr-defined]


class WhoAmISerializer(serializers.Serializer):
    subject = serializers.CharField()
    kind = serializers.CharField()
    tenant_id = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class WhoAmIView(APIView):
    """GET /v1/whoami: the caller's principal as the server sees it."""

    required_role = AUTHENTICATED

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request: Request) -> Response:
        principal: Any = request.user
        return Response(
            {
                "subject": principal.subject,
                "kind": principal.kind,
                "tenant_id": principal.tenant_id,
                "roles": sorted(principal.roles),
            }
        )
