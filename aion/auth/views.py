"""Public JWKS and the ``whoami`` endpoint."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
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


class WhoAmIView(APIView):
    required_role = AUTHENTICATED

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
