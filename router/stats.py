"""Runtime metrics store: rolling p50/p95/error rate per target, in-flight counts and budget spend.

Samples are ``RuntimeSample`` rows (one per target attempt). Rolling figures use
the last ``AION_ROUTER_STATS_WINDOW`` samples of each target within
``AION_ROUTER_STATS_WINDOW_SECONDS``, so a recovered target is trusted again
quickly and an old outage does not linger.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from modules.selectors import active_module_targets
from router.choices import Outcome, TaskStatus
from router.engine import RuntimeView, TargetStats
from router.models import RuntimeSample, Task
from router.policy import Policy, Target


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (the value at or below which FRACTION of samples fall)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def target_stats(names: list[str], *, now: datetime | None = None) -> dict[str, TargetStats]:
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.AION_ROUTER_STATS_WINDOW_SECONDS)
    out: dict[str, TargetStats] = {}
    for name in names:
        rows = list(
            RuntimeSample.objects.filter(target=name, created_at__gte=since, created_at__lte=now)
            .order_by("-created_at", "-id")
            .values_list("latency_ms", "outcome")[: settings.AION_ROUTER_STATS_WINDOW]
        )
        if not rows:
            continue
        latencies = [float(r[0]) for r in rows]
        errors = sum(1 for r in rows if r[1] != Outcome.OK)
        out[name] = TargetStats(
            p50_ms=percentile(latencies, 0.5),
            p95_ms=percentile(latencies, 0.95),
            error_rate=errors / len(rows),
            samples=len(rows),
        )
    return out


def in_flight(names: list[str]) -> dict[str, int]:
    rows = Task.objects.filter(status=TaskStatus.RUNNING, target__in=names).values("target").annotate(n=Count("id"))
    return {row["target"]: int(row["n"]) for row in rows}


def day_start(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def spent_today(tenant_id: str, *, now: datetime | None = None) -> float:
    total = RuntimeSample.objects.filter(tenant_id=tenant_id, created_at__gte=day_start(now)).aggregate(s=Sum("cost_usd"))["s"]
    return float(total or Decimal(0))


def registry_targets(tenant_id: str) -> list[Target]:
    """Active modules of the tenant from the module registry, as ``module:<name>`` targets."""
    return [
        Target(
            name=f"module:{m.name}",
            kind="module",
            route="local",
            endpoint=m.endpoint.rstrip("/"),
            intents=tuple(m.intents),
            health=m.health,
            from_registry=True,
        )
        for m in active_module_targets(tenant_id)
    ]


_view_cache: dict[tuple[str, ...], tuple[float, RuntimeView]] = {}
_view_lock = threading.Lock()


def runtime_view(policy: Policy, tenant_id: str, *, now: datetime | None = None) -> RuntimeView:
    """Everything the strategies read, cached per process for AION_ROUTER_STATS_CACHE_SECONDS.

    A short cache keeps the per-decision cost to the revision check; the figures are rolling
    windows anyway, so a second of staleness does not change what they say. When the entry
    expires, one thread re-reads it and the others keep deciding on the previous figures
    (no burst of identical queries from every concurrent request).
    """
    ttl = settings.AION_ROUTER_STATS_CACHE_SECONDS
    key = (str(policy.revision), policy.sha256, tenant_id)
    if ttl <= 0 or now is not None:
        return _read_view(policy, tenant_id, now=now)
    hit = _view_cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    if hit is not None and not _view_lock.acquire(blocking=False):
        return hit[1]  # another thread is refreshing this process's figures
    if hit is None:
        _view_lock.acquire()
    try:
        hit = _view_cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        view = _read_view(policy, tenant_id, now=None)
        if len(_view_cache) > 1000:
            _view_cache.clear()
        _view_cache[key] = (time.monotonic() + ttl, view)
        return view
    finally:
        _view_lock.release()


def _read_view(policy: Policy, tenant_id: str, *, now: datetime | None) -> RuntimeView:
    registry = registry_targets(tenant_id) if policy.registry_modules else []
    names = sorted(set(policy.targets) | {t.name for t in registry})
    return RuntimeView(
        stats=target_stats(names, now=now),
        in_flight=in_flight(names),
        spent_today_usd=spent_today(tenant_id, now=now),
        registry=registry,
    )
