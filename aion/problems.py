"""RFC 9457 problem details: the one shape of every API error.

Services raise ``aion.errors`` kinds; views raise ``Problem`` (or DRF's exceptions) for what only the
edge knows. ``exception_handler`` and the Django-level handlers turn everything, unhandled errors included, into
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``
and, for validation failures, ``errors`` keyed by dotted field path.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from aion import errors as domain
from aion.context import current_request_id
from aion.roles import group_roles

logger = logging.getLogger("aion.problems")

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:aion:problem:"

_DEFAULT_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    428: "precondition-required",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def status_title(status: int) -> str:
    """The reason phrase this API uses for STATUS (RFC 9110's, "Error" for others)."""
    return _TITLES.get(status, "Error")


class Problem(drf.APIException, domain.DomainError):  # type: ignore[misc]  # DRF types detail loosely; it is a str here
    """An API error with a status, a stable type slug, a detail and optional field errors.

    It is a ``DomainError`` too, so a caller that catches domain errors (a Console view, the inbound
    hook) also catches a ``Problem`` raised by a service not yet converted (the import contracts keep
    new service code from raising it); ``domain_status`` answers its own status.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail=detail)
        self.status_code = status
        self.slug = slug or _DEFAULT_SLUGS.get(status, "error")
        self.code = self.slug  # type: ignore[misc]  # the DomainError view of the slug
        self.title = title or _TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        retry_after = self.headers.get("Retry-After", "")
        self.retry_after = int(retry_after) if retry_after.isdigit() else None


def problem_body(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (slug or _DEFAULT_SLUGS.get(status, "error")),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return body


def problem_response(status: int, detail: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> JsonResponse:
    """A plain Django response carrying a problem (for middleware and non-DRF views)."""
    response = JsonResponse(problem_body(status, detail, **kwargs), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as ``{"a.0.b": ["message"]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") and not prefix else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            for field, messages in flatten_errors(value, path).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item in ({}, []):
                    continue
                for field, messages in flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)).items():
                    out.setdefault(field, []).extend(messages)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


# How long a client should wait before retrying when the database (or its pool) is unavailable.
DATABASE_RETRY_AFTER_SECONDS = 2


def is_database_unavailable(exc: BaseException | None) -> bool:
    """The database is down, unreachable, or the pool had no free connection in time (psycopg's PoolTimeout)."""
    from django.db import InterfaceError, OperationalError

    if exc is None:
        return False
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    try:
        from psycopg_pool import PoolTimeout, TooManyRequests
    except ImportError:  # the pool is only installed with PostgreSQL support
        return False
    return isinstance(exc, PoolTimeout | TooManyRequests)


def database_unavailable_body() -> dict[str, Any]:
    return problem_body(
        503,
        "The database is unavailable or busy; retry after the interval in Retry-After.",
        slug="database-unavailable",
    )


# The one place a domain error kind becomes an HTTP status (docs/architecture.md, "Errors").
DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.InvalidInput: 400,
    domain.Unauthenticated: 401,
    domain.NotAllowed: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Expired: 410,
    domain.StaleVersion: 412,
    domain.TooLarge: 413,
    domain.Rejected: 422,
    domain.VersionRequired: 428,
    domain.RateLimited: 429,
    domain.Unavailable: 503,
}


def domain_status(error: domain.DomainError) -> int:
    """The status of ERROR's kind: the nearest class in its MRO that the table names (422 otherwise)."""
    if isinstance(error, Problem):
        return int(error.status_code)
    for kind in type(error).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]  # type: ignore[index]
    return 422


def problem_from_domain(error: domain.DomainError) -> Problem:
    """ERROR as the API's ``Problem`` (status from its kind, Retry-After when it says when)."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return Problem(
        domain_status(error), error.detail, slug=error.code, title=error.title, errors=error.errors, headers=headers, **error.extra
    )


def _drf_status_slug(exc: drf.APIException) -> tuple[int, str, str]:
    status = int(exc.status_code)
    if isinstance(exc, drf.ValidationError):
        return 400, "validation-error", "The request has invalid fields."
    if isinstance(exc, drf.ParseError):
        return 400, "malformed-request", f"The request body could not be parsed: {exc.detail}"
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return 401, "unauthenticated", str(exc.detail)
    if isinstance(exc, drf.Throttled):
        return 429, "rate-limited", str(exc.detail)
    return status, _DEFAULT_SLUGS.get(status, "error"), str(exc.detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes a problem, never an HTML page."""
    from rest_framework.views import set_rollback  # lazy: rest_framework.views imports our auth classes

    headers: dict[str, str] = {}
    if isinstance(exc, domain.DomainError) and not isinstance(exc, Problem):
        exc = problem_from_domain(exc)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)

    if is_database_unavailable(exc):
        logger.warning("database unavailable", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        body = database_unavailable_body()
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        status = 503
    elif isinstance(exc, Problem):
        body = problem_body(exc.status_code, str(exc.detail), slug=exc.slug, title=exc.title, errors=exc.errors, **exc.extra)
        headers.update(exc.headers)
        status = exc.status_code
    elif isinstance(exc, drf.APIException):
        status, slug, detail = _drf_status_slug(exc)
        errors = flatten_errors(exc.detail) if isinstance(exc, drf.ValidationError) else None
        body = problem_body(status, detail, slug=slug, errors=errors)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait))
        if status == 401 and "WWW-Authenticate" not in headers:
            headers["WWW-Authenticate"] = 'Bearer realm="aion", ApiKey header="x-api-key"'
    else:
        logger.exception("unhandled error in API view", extra={"view": type(context.get("view")).__name__})
        status = 500
        body = problem_body(500, "An unexpected error occurred; it has been logged with this request id.")
    set_rollback()
    # A problem is JSON whatever the view negotiated: the schema view would otherwise render it as YAML, the
    # Swagger UI as HTML, and a failed negotiation (406, an unknown ?format=) with the first renderer.
    request = context.get("request")
    if request is not None:
        from rest_framework.renderers import JSONRenderer

        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    response = Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


# --- Django-level handlers (URLconf handler404/handler500/...) ----------------------------------


def _wants_html(request: HttpRequest) -> bool:
    path = request.path
    return (path.startswith("/console") or path.startswith("/admin")) and "text/html" in request.headers.get("Accept", "")


def _exception_message(exception: Exception | None) -> str:
    """The message a view gave (``PermissionDenied("This page requires the role ...")``), or "" (Resolver404's dict)."""
    if exception is None or not exception.args:
        return ""
    message = exception.args[0]
    return message if isinstance(message, str) else ""


def _error_context(request: HttpRequest, status: int, detail: str) -> dict[str, Any]:
    from django.utils.http import url_has_allowed_host_and_scheme

    referer = request.headers.get("Referer", "")
    same_site = url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return {
        "status": status,
        "title": status_title(status),
        "detail": detail,
        "back_url": referer if referer and same_site and not referer.endswith(request.get_full_path()) else "",
        "request_id": current_request_id() or "",
        "request_path": request.path,
    }


# role_required's message: "This page requires the role 'kernel.admin'." or "... the role one of a, b."
_ROLE_MESSAGE = re.compile(r"requires the role (?:one of )?(?P<roles>.+?)\.?$")


def _html_403(request: HttpRequest, detail: str) -> HttpResponse:
    from django.shortcuts import render

    context = _error_context(request, 403, detail)
    match = _ROLE_MESSAGE.search(detail)
    if match:
        context["required_role"] = match.group("roles").replace("'", "")
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        # The roles principal_for_user would give, read without aion.auth (which builds on this module).
        context["user_roles"] = sorted(group_roles(request.user.groups.values_list("name", flat=True)))
    return render(request, "403.html", context, status=403)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(400, "The request was malformed.", slug="malformed-request")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = _exception_message(exception) or "You do not have permission to perform this action."
    if _wants_html(request):
        return _html_403(request, detail)
    return problem_response(403, detail)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_html(request):
        from django.shortcuts import render

        detail = _exception_message(exception) or "There is no such page."
        return render(request, "404.html", _error_context(request, 404, detail), status=404)
    return problem_response(404, f"No route or resource matches {request.path!r}.")


def _html_5xx(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    """The 500 page is rendered with a plain context: no context processor (session, user, DB) may fail again."""
    from django.template import loader

    context = {"status": status, "title": status_title(status), "detail": detail, "request_id": current_request_id() or ""}
    return HttpResponse(loader.get_template("500.html").render(context), status=status, content_type="text/html; charset=utf-8")


def handler500(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its except block, so the exception is still the current one.
    if is_database_unavailable(sys.exc_info()[1]):
        body = database_unavailable_body()
        if _wants_html(request):
            response: HttpResponse = _html_5xx(request, 503, body["detail"])
        else:
            response = JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    detail = "An unexpected error occurred; it has been logged with this request id."
    if _wants_html(request):
        return _html_5xx(request, 500, detail)
    return problem_response(500, detail)


def csrf_failure(request: HttpRequest, reason: str = "") -> Any:
    if _wants_html(request):
        from django.views.csrf import csrf_failure as django_csrf_failure

        return django_csrf_failure(request, reason)
    return problem_response(403, f"CSRF verification failed: {reason}", slug="csrf-failed")
