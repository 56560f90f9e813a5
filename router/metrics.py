"""Router Prometheus metrics (names fixed by the contract) and the scrape-time collector."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Sum
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aion.metrics import register_scrape_collector
from router.choices import TaskStatus
from router.models import RuntimeSample, Task
from router.stats import day_start

TASK_LATENCY = Histogram(
    "router_task_latency_seconds",
    "Task execution latency (claim to outcome) by route and the target that decided it",
    ["route", "target"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DECISIONS = Counter("router_decisions_total", "Routing decisions by route and strategy", ["route", "strategy"])


class RouterCollector(Collector):
    """Queue depth and today's budget spend, read from the database at scrape time (right in every process)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("router_queue_depth", "Tasks waiting for or being executed by a worker", labels=["status"])
        try:
            for status in (TaskStatus.PENDING, TaskStatus.RUNNING):
                depth.add_metric([status.value], Task.objects.filter(status=status).count())
            spend = GaugeMetricFamily("router_budget_spent_usd", "USD spent today (UTC) per tenant", labels=["tenant"])
            rows = RuntimeSample.objects.filter(created_at__gte=day_start()).values("tenant_id").annotate(s=Sum("cost_usd"))
            for row in rows:
                spend.add_metric([row["tenant_id"]], float(row["s"] or 0))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        yield depth
        yield spend


def register_collector() -> None:
    register_scrape_collector(RouterCollector())
