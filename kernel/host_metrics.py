"""Scrape-time gauges of hosts and rollout (issue 17): ``k_hosts{state}`` and ``k_rollout_converged_ratio{tenant, scope}``.

Read from the database at scrape time, like ``router_queue_depth``: the same answer from every process (web,
worker), with nothing to share through PROMETHEUS_MULTIPROC_DIR, and staleness is judged against the clock
of the scrape. ``k_rollout_converged_ratio`` is the rollout of each scope's current revision (after a rollback,
the rollback's: 1 means the rollback is complete); a scope whose revision targets no host has no sample.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aion.metrics import register_scrape_collector
from kernel.choices import HostState


class HostCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from kernel import hosts
        from kernel.models import ConfigScope, Host

        states = GaugeMetricFamily("k_hosts", "Hosts reported by node agents, by state", labels=["state"])
        ratio = GaugeMetricFamily(
            "k_rollout_converged_ratio", "Hosts converged on the scope's current revision / hosts it targets", labels=["tenant", "scope"]
        )
        try:
            now = timezone.now()
            counts = {state.value: 0 for state in HostState}
            desired: dict[str, hosts.Desired] = {}
            for host in Host.objects.prefetch_related("scopes").iterator(chunk_size=500):
                tenant_desired = desired.setdefault(host.tenant_id, hosts.Desired(host.tenant_id))
                counts[hosts.live_state(host, tenant_desired, now)] += 1
            for name, count in counts.items():
                states.add_metric([name], count)
            heads = ConfigScope.objects.filter(current__isnull=False, tenant_id__in=list(desired)).values_list(
                "tenant_id", "scope", "current__number"
            )
            for tenant_id, scope, number in heads:
                rollout = hosts.revision_rollout(tenant_id, scope, number, desired=desired[tenant_id], now=now, host_limit=0)
                if rollout and rollout["targeted"]:
                    ratio.add_metric([tenant_id, scope], rollout["converged"] / rollout["targeted"])
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        yield states
        yield ratio


def register_collector() -> None:
    register_scrape_collector(HostCollector())
