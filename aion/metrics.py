"""Prometheus metrics: one place that owns the registry and the /metrics view.

Apps declare their counters and histograms with ``prometheus_client`` as usual
(they land on the default registry). Values computed at scrape time from the
database (backlogs, queue depth) are registered with ``scrape_registry`` so
they are right in every process. When PROMETHEUS_MULTIPROC_DIR is set (the run
command sets it), web, worker and beat share counters through it.

/metrics carries tenant ids and route labels, so it wants ``Authorization:
Bearer <AION_METRICS_TOKEN>`` (also ``AION_METRICS_TOKEN_FILE``); a wrong or
missing token is a 401 problem. Unset, it is open: settings refuse that when
AION_ENV=prod. The same token unlocks the details of /readyz (aion/health.py).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from aion.problems import problem_response

# Scrape-time collectors (read the database on every scrape; never stale across processes).
# auto_describe off: registering must not run collectors (they query the DB) during app start-up.
scrape_registry = CollectorRegistry(auto_describe=False)

HTTP_REQUESTS = Counter("aion_http_requests_total", "HTTP requests served", ["route", "method", "status"])
HTTP_LATENCY = Histogram(
    "aion_http_request_duration_seconds",
    "HTTP request latency",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def render_metrics() -> bytes:
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    return text + generate_latest(scrape_registry)


def has_metrics_token(request: HttpRequest) -> bool:
    """True when REQUEST carries ``Authorization: Bearer <AION_METRICS_TOKEN>``, or no token is configured (dev only)."""
    expected = settings.AION_METRICS_TOKEN
    if not expected:
        return True
    scheme, _, supplied = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), expected.encode())


def metrics_token_problem() -> HttpResponse:
    return problem_response(
        401,
        "The metrics need Authorization: Bearer <AION_METRICS_TOKEN>.",
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not has_metrics_token(request):
        return metrics_token_problem()
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


metrics_view.required_role = "public"  # type: ignore[attr-defined]  # no principal: the bearer token is checked above


_scrape_collectors: set[str] = set()


def register_scrape_collector(collector: object) -> None:
    """Add a scrape-time collector once per process (apps call this from ready(), which may run twice)."""
    name = f"{type(collector).__module__}.{type(collector).__qualname__}"
    if name in _scrape_collectors:
        return
    scrape_registry.register(collector)  # type: ignore[arg-type]
    _scrape_collectors.add(name)
