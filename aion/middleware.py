"""Request middleware: request ids, metrics, and body-size limits (413 problems)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject, empty

from aion.clientip import client_ip
from aion.context import accept_or_generate_request_id, request_id_var
from aion.metrics import HTTP_LATENCY, HTTP_REQUESTS
from aion.problems import problem_response, status_title

logger = logging.getLogger("aion.request")


class RequestIdMiddleware:
    """Accepts a well-formed ``x-request-id`` or makes one; echoes it on every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accept_or_generate_request_id(request.headers.get("x-request-id"))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["x-request-id"] = request_id
        return response


def route_name(request: HttpRequest) -> str:
    known = getattr(request, "aion_route", None)
    if known:
        return str(known)
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched"
    return match.view_name or match.route or "unmatched"


class MetricsMiddleware:
    """Request counts and latency by route name and status, plus one JSON access-log line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = route_name(request)
        status = str(response.status_code)
        HTTP_REQUESTS.labels(route, request.method, status).inc()
        HTTP_LATENCY.labels(route, request.method, status).observe(elapsed)
        if route not in ("healthz", "metrics"):
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client_ip": client_ip(request),
                },
            )
        return response


class HealthProbeMiddleware:
    """Answers the probes (``GET``/``HEAD /healthz`` and ``/readyz``) before sessions, CSRF, auth and the URL resolver.

    Probes come many times a minute from every kubelet; they need none of that stack, only the request id
    and the request metrics above this middleware. ``aion.health.healthz`` stays routed (same answer) for
    the schema and for anything that reaches it another way (``aion.health.readyz`` likewise).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info in ("/healthz", "/readyz") and request.method in ("GET", "HEAD"):
            from aion.health import healthz, readyz

            route = request.path_info[1:]
            request.aion_route = route  # type: ignore[attr-defined]  # for the metrics, without resolving the URL
            # Also before the Host check (CommonMiddleware): the kubelet's probes send the pod's IP as Host, which
            # AION_ALLOWED_HOSTS does not list, so a routed /readyz answered them 400 and the pod never became ready.
            return healthz(request) if route == "healthz" else readyz(request)
        return self.get_response(request)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's messages, but the storage (a signed-cookie reader) is only built when a view or template uses it.

    API requests never do; Django's middleware built it, and signed its cookie, on every request.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:  # type: ignore[attr-defined]
            return response  # never used: nothing to store
        return super().process_response(request, response)


class BodySizeMiddleware:
    """Rejects bodies over the view's ``max_body_bytes`` (or AION_MAX_BODY_BYTES) with a 413 problem."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> HttpResponse | None:
        from django.conf import settings

        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = getattr(view_class, "max_body_bytes", None) or getattr(view_func, "max_body_bytes", None)
        limit = limit or settings.AION_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400, "Content-Length is not a number.", slug="malformed-request")
        if length > limit:
            return problem_response(413, f"The request body is {length} bytes; this route accepts at most {limit}.")
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.core.exceptions import RequestDataTooBig

        if isinstance(exception, RequestDataTooBig):
            return problem_response(413, "The request body is too large.")
        return None


class ErrorBodyMiddleware:
    """An error response with no body (Django's ``require_POST`` 405, a bare ``HttpResponseNotAllowed``) gets one:
    problem JSON on API and platform routes, an HTML page on Console and admin routes. Headers such as ``Allow``
    are kept."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or response.streaming or response.content:
            return response
        from django.template.loader import render_to_string

        status = response.status_code
        title = status_title(status)
        detail = {405: f"{request.method} is not allowed here; allowed: {response.get('Allow', 'none')}."}.get(status, title)
        if request.path.startswith(("/console", "/admin")):
            html = render_to_string("error.html", {"status": status, "title": title, "detail": detail}, request=request)
            replacement = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
        else:
            replacement = problem_response(status, detail)
        for name, value in response.items():
            if name.lower() not in ("content-type", "content-length"):
                replacement[name] = value
        return replacement
