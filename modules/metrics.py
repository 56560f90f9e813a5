"""Module metrics: ``module_up{name,version,pool}`` (from the database, at scrape time) and health-check latency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily

from aion.metrics import register_scrape_collector

HEALTH_CHECK_LATENCY = Histogram(
    "module_health_check_latency_seconds",
    "Latency of module host health checks",
    ["name", "pool", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class ModuleCollector:
    """module_up is 1 for up/degraded hosts and 0 for down or never-checked ones (the same label set across
    tenants collapses to the worst value, since the contract fixes the labels)."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from modules.choices import HealthStatus
        from modules.models import Module

        up = GaugeMetricFamily("module_up", "1 when the active module host answers its health check", labels=["name", "version", "pool"])
        latency = GaugeMetricFamily(
            "module_health_last_latency_seconds", "Latency of the last health check of each module", labels=["name", "version", "pool"]
        )
        values: dict[tuple[str, str, str], tuple[float, float]] = {}
        try:
            rows = list(
                Module.objects.filter(enabled=True, active_version__isnull=False).values_list(
                    "name", "active_version__version", "active_version__pool", "health", "health_latency_ms"
                )
            )
        except Exception:  # noqa: BLE001 - a scrape must not fail because the table is missing (fresh install)
            rows = []
        for name, version, pool, health, latency_ms in rows:
            labels = (name, version, pool)
            value = 1.0 if health in (HealthStatus.UP, HealthStatus.DEGRADED) else 0.0
            seconds = (latency_ms or 0.0) / 1000
            if labels in values:
                value = min(value, values[labels][0])
                seconds = max(seconds, values[labels][1])
            values[labels] = (value, seconds)
        for labels, (value, seconds) in sorted(values.items()):
            up.add_metric(list(labels), value)
            latency.add_metric(list(labels), seconds)
        yield up
        yield latency


def register_collector() -> None:
    register_scrape_collector(ModuleCollector())
