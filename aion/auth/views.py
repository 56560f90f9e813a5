"""Public JWKS and the ``whoami`` endpoint."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.views import APIView
from aion.rbac import AUTHENTICATED


def jwks_view(request: HttpRequest) -> JsonResponse:
    """The active public keys (never private material)."""
    from aion.auth.jwt import load_jwks

    public = [
        {k: v for k, v in jwk.items() if k in ("kty", "kid", "use", "alg", "n", "e", "crv", "x", "y")}
        for jwk in load_jwks().get("keys", [])
        if jwk.get("status", "active") == "active"
    ]
    return JsonResponse({"keys": public})


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
