"""One HTTP health probe of a module host, through the SSRF guard, with a timeout.

The outcome is ``ok`` (2xx in time), ``slow`` (2xx slower than
AION_MODULES_HEALTH_SLOW_SECONDS) or ``failed`` (non-2xx, timeout, refused,
or a destination the guard refuses). ``services.record_probe`` turns
outcomes into the module's health.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from django.conf import settings

from aion import netguard
from modules.choices import ProbeOutcome

HEADERS = {"User-Agent": "aion-control/modules"}


@dataclass(frozen=True)
class Probe:
    outcome: str
    http_status: int | None
    latency_ms: float | None
    error: str = ""
    excerpt: str = ""


def probe_url(url: str, *, timeout: float, clock: Callable[[], float] = time.perf_counter) -> Probe:
    started = clock()
    try:
        response = netguard.guarded_request(
            "GET", url, allow_private=settings.AION_MODULES_ALLOW_PRIVATE_NETWORKS, timeout=timeout, headers=HEADERS
        )
    except netguard.UnsafeDestination as exc:
        return Probe(ProbeOutcome.FAILED, None, None, f"refused by the SSRF guard: {exc}")
    except httpx.TimeoutException:
        return Probe(ProbeOutcome.FAILED, None, round((clock() - started) * 1000, 2), f"timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        return Probe(ProbeOutcome.FAILED, None, round((clock() - started) * 1000, 2), f"{type(exc).__name__}: {str(exc)[:300]}")
    latency_ms = round((clock() - started) * 1000, 2)
    excerpt = response.text[:300] if response.content else ""
    if not 200 <= response.status_code < 300:
        return Probe(ProbeOutcome.FAILED, response.status_code, latency_ms, f"HTTP {response.status_code}", excerpt)
    if latency_ms > settings.AION_MODULES_HEALTH_SLOW_SECONDS * 1000:
        return Probe(ProbeOutcome.SLOW, response.status_code, latency_ms, f"slow: {latency_ms:.0f} ms", excerpt)
    return Probe(ProbeOutcome.OK, response.status_code, latency_ms, "", excerpt)
