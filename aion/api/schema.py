"""The OpenAPI document as the contract: security schemes, each operation's role and its problem responses.

Every operation carries:
- ``security``: the three credential schemes (``x-api-key``, a Bearer JWT, the Console session), or ``[]``
  for the public routes;
- ``x-required-role``: the role ``aion.rbac.RolePermission`` checks (``public``, ``authenticated`` or a role);
- the error statuses it can answer, each an RFC 9457 problem (``application/problem+json``).

The routes that are plain Django views (health, readiness, metrics, the JWKS) are added by
``add_platform_routes`` so the document covers every route a client can call.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from aion.problems import PROBLEM_CONTENT_TYPE
from aion.rbac import AUTHENTICATED, PUBLIC, required_role_for

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; validation failures add `errors` keyed by dotted field path.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "urn:aion:problem:validation-error"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "request_id": {"type": "string"},
    },
    "additionalProperties": True,
}

_WHY = {
    "400": "The request (query, path or body) is malformed or invalid.",
    "401": "No valid credential.",
    "403": "The credential lacks the required role, or the resource belongs to another tenant.",
    "404": "No such resource in the caller's tenant.",
    "406": "The Accept header asks for a representation this route does not serve.",
    "409": "The resource's state does not allow this change, or a concurrent change won.",
    "412": "If-Match does not match the resource's current ETag.",
    "413": "The body is larger than the route accepts.",
    "415": "The body's Content-Type is not one this route accepts.",
    "422": "The request is well-formed but refused by a domain rule.",
    "428": "This write needs If-Match.",
    "429": "Rate limited; retry after Retry-After seconds.",
    "503": "A dependency is unavailable; retry after Retry-After seconds.",
}
_EVERY = ("400", "406", "429", "503")
_AUTHENTICATED_ONLY = ("401", "403")
_WITH_PATH_ID = ("404",)
_WRITES = ("404", "409", "412", "413", "415", "422", "428")  # 404: a body may name what does not exist
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def paginated(serializer: Any, name: str) -> Any:
    """The limit/offset page (``aion.api.pagination.Pagination``) of SERIALIZER items, for views that paginate by hand."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer(many=True),
    }
    return inline_serializer(name, fields)


def page_parameters() -> list[Any]:
    from drf_spectacular.utils import OpenApiParameter

    return [OpenApiParameter("limit", int, description="Page size (at most 500)"), OpenApiParameter("offset", int)]


def problem_response(status: str) -> dict[str, Any]:
    return {"description": _WHY[status], "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}}


def error_statuses(*, public: bool, method: str, has_path_params: bool) -> list[str]:
    statuses = list(_EVERY)
    if not public:
        statuses += _AUTHENTICATED_ONLY
    if has_path_params:
        statuses += _WITH_PATH_ID
    if method in _WRITE_METHODS:
        statuses += _WRITES
    return sorted(set(statuses))


class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "aion.auth.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "A tenant API key (`aion_...`)."}


class BearerJWTScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "aion.auth.authentication.JWTAuthentication"
    name = "BearerJWT"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A JWT verified against the JWKS."}


class ConsoleSessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "aion.auth.authentication.ConsoleSessionAuthentication"
    name = "ConsoleSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The Console's login session; writes also need the CSRF token.",
        }


class AionAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the role, the security requirement and the problem responses."""

    def required_role(self) -> str | None:
        return required_role_for(self.view, SimpleNamespace(method=self.method))

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        role = self.required_role() or "undeclared"
        # No authenticator at all (the signed approval hook): the request itself carries its proof.
        public = role == PUBLIC or not self.view.get_authenticators()
        operation["x-required-role"] = role
        if public:
            operation["security"] = []
        explained = {PUBLIC: "Public: no credential.", AUTHENTICATED: "Any valid credential."}.get(role, f"Requires the role `{role}`.")
        if public and role != PUBLIC:
            explained = f"Public: no credential; the request's own signature is checked (`{role}`)."
        operation["description"] = (operation.get("description", "").rstrip() + "\n\n" + explained).strip()
        responses = operation.setdefault("responses", {})
        has_path_params = "{" in path
        # A signed route (no credential, but not public) still answers 401/403 for a bad or unscoped signature.
        for status in error_statuses(public=role == PUBLIC, method=self.method, has_path_params=has_path_params):
            responses.setdefault(status, problem_response(status))
        return operation


def add_platform_routes(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOK: the Problem component, and the plain-Django platform routes."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schemes = components.setdefault("securitySchemes", {})
    schemes["MetricsToken"] = {"type": "http", "scheme": "bearer", "description": "`AION_METRICS_TOKEN`, for Prometheus."}
    paths = result.setdefault("paths", {})

    def platform(
        summary: str, content_type: str, schema: dict[str, Any], *, statuses: tuple[str, ...] = ("503",), **extra: Any
    ) -> dict[str, Any]:
        responses: dict[str, Any] = {"200": {"description": summary, "content": {content_type: {"schema": schema}}}}
        for status in statuses:
            responses[status] = problem_response(status)
        operation = {"summary": summary, "tags": ["platform"], "security": [], "x-required-role": PUBLIC, "responses": responses}
        operation.update(extra)
        return {"get": operation}

    status_map = {"type": "object", "additionalProperties": True}
    paths["/healthz"] = platform(
        "Liveness: the process answers; no I/O.", "application/json", status_map, statuses=(), operationId="healthz"
    )
    ready = platform(
        "Readiness: a status per dependency (details only for an authenticated caller).",
        "application/json",
        status_map,
        operationId="readyz",
    )
    ready["get"]["responses"]["503"] = {
        "description": "A dependency is not ready; the body names which.",
        "content": {"application/json": {"schema": status_map}, PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}},
    }
    paths["/readyz"] = ready
    paths["/.well-known/jwks.json"] = platform(
        "The public keys that verify the platform's JWTs.",
        "application/json",
        {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {"type": "object"}}}},
        statuses=(),
        operationId="jwks",
    )
    metrics = platform(
        "Prometheus metrics (text exposition format).", "text/plain", {"type": "string"}, statuses=("401",), operationId="metrics"
    )
    metrics["get"]["security"] = [{"MetricsToken": []}, {}]
    metrics["get"]["x-required-role"] = "metrics token (AION_METRICS_TOKEN), when set"
    paths["/metrics"] = metrics
    return result
