"""The public JWKS (the ``whoami`` API view is ``aion.api.views.WhoAmIView``)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from aion.auth.jwt import active_public_keys


def jwks_view(request: HttpRequest) -> JsonResponse:
    """The active public keys (never private material, never retired keys)."""
    response = JsonResponse({"keys": active_public_keys()})
    response["Cache-Control"] = "public, max-age=300"
    return response


jwks_view.required_role = "public"  # type: ignore[attr-defined]
