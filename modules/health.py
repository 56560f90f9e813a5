"""Module host health: probe each active host's health path, record the outcome, move the module's health.

``probe_url`` is one HTTP probe through the SSRF guard, with a timeout. Its outcome is ``ok`` (2xx in
time), ``slow`` (2xx slower than AION_MODULES_HEALTH_SLOW_SECONDS) or ``failed`` (non-2xx, timeout,
refused, or a destination the guard refuses). ``record_probe`` turns outcomes into the module's
health (audited, counted as flaps); ``poll_health`` (the beat job ``modules.poll_health``) probes every
enabled, active host in parallel and records each. ``modules.services`` re-exports the last three.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion import audit, netguard
from modules import metrics
from modules.choices import HealthStatus, ProbeOutcome
from modules.models import Module, ModuleHealthCheck

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


# --- Health of a module: its probes recorded ------------------------------------------------------------------------------------


def next_health(previous: str, outcomes: list[str], consecutive_failures: int) -> str:
    """up: every recent poll answered in time; down: N failures in a row; degraded: anything between."""
    if consecutive_failures >= settings.AION_MODULES_DOWN_AFTER_FAILURES:
        return HealthStatus.DOWN
    if outcomes and all(outcome == ProbeOutcome.OK for outcome in outcomes):
        return HealthStatus.UP
    return HealthStatus.DEGRADED


def record_probe(module: Module, probe: Probe, *, version: str, url: str, now: datetime | None = None) -> Module:
    """Store one poll and move the module's health; transitions are audited and counted as flaps."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Module.objects.select_for_update(of=("self",)).select_related("active_version").get(pk=module.pk)
        if locked.active_version is None or locked.active_version.version != version:
            return locked  # activated elsewhere meanwhile: this poll is about a version no longer active
        failures = locked.consecutive_failures + 1 if probe.outcome == ProbeOutcome.FAILED else 0
        window = settings.AION_MODULES_HEALTH_WINDOW
        same_version = ModuleHealthCheck.objects.filter(module=locked, version=version).order_by("-checked_at", "-id")
        recent = list(same_version.values_list("outcome", flat=True)[: window - 1])
        status = next_health(locked.health, [probe.outcome, *recent], failures)
        ModuleHealthCheck.objects.create(
            tenant_id=locked.tenant_id,
            module=locked,
            version=version,
            url=url[:600],
            outcome=probe.outcome,
            status_after=status,
            http_status=probe.http_status,
            latency_ms=probe.latency_ms,
            error=probe.error[:500],
            response_excerpt=probe.excerpt[:500],
            checked_at=now,
        )
        previous = locked.health
        locked.consecutive_failures = failures
        locked.health_checked_at = now
        locked.health_latency_ms = probe.latency_ms
        locked.last_health_error = probe.error[:500] if probe.outcome != ProbeOutcome.OK else ""
        if status != previous:
            if previous != HealthStatus.UNKNOWN:
                locked.flap_count += 1
            locked.health = status
            locked.health_changed_at = now
            audit.record(
                "module.health_changed",
                "module",
                locked.name,
                actor="system:modules.poll_health",
                tenant_id=locked.tenant_id,
                before={"health": previous},
                after={"health": status, "version": version},
                metadata={"outcome": probe.outcome, "http_status": probe.http_status, "error": probe.error[:200]},
            )
        locked.save(
            update_fields=[
                "consecutive_failures",
                "health_checked_at",
                "health_latency_ms",
                "last_health_error",
                "health",
                "health_changed_at",
                "flap_count",
                "updated_at",
            ]
        )
        # Keep the newest checks only: the history is for "check module host logs", not an archive.
        keep = settings.AION_MODULES_HEALTH_HISTORY
        stale = list(
            ModuleHealthCheck.objects.filter(module=locked).order_by("-checked_at", "-id").values_list("id", flat=True)[keep : keep + 500]
        )
        if stale:
            ModuleHealthCheck.objects.filter(id__in=stale).delete()
    return locked


@dataclass
class PollResult:
    module: Module
    probe: Probe
    health: str
    extra: dict[str, Any] = field(default_factory=dict)


def poll_health(*, tenant_id: str | None = None, now: datetime | None = None) -> list[PollResult]:
    """Probe the health path of every enabled, active module host (in parallel), then record each result."""
    modules = list(
        Module.objects.filter(enabled=True, active_version__isnull=False)
        .select_related("active_version")
        .order_by("tenant_id", "name")
        .filter(**({"tenant_id": tenant_id} if tenant_id else {}))
    )
    if not modules:
        return []
    timeout = settings.AION_MODULES_HEALTH_TIMEOUT_SECONDS
    targets = [(module, module.active_version) for module in modules]
    with ThreadPoolExecutor(max_workers=min(8, len(targets)), thread_name_prefix="module-health") as pool:
        probes = list(pool.map(lambda pair: probe_url(pair[1].health_url, timeout=timeout), targets))
    results = []
    for (module, version), probe in zip(targets, probes, strict=True):
        assert version is not None
        metrics.HEALTH_CHECK_LATENCY.labels(module.name, version.pool, probe.outcome).observe((probe.latency_ms or 0) / 1000)
        updated = record_probe(module, probe, version=version.version, url=version.health_url, now=now)
        results.append(PollResult(updated, probe, updated.health))
    return results
