"""Scrape-time gauges of hosts and rollout: ``k_hosts{state}`` and ``k_rollout_converged_ratio{tenant, scope}``
(the Grafana "Kernel" dashboard's hosts-converged panel, beside k_rollbacks_total)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from aion.testing.factories import TENANT
from aion.testing.kernel_proposals import act
from kernel.tests.hosts_support import agent, applied, post_report, report_body, scope_report

pytestmark = pytest.mark.django_db

DOC = {"net.core.somaxconn": 1024}


def scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def sample(text: str, name: str, labels: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_hosts_by_state_and_the_rollback_converging(proposer, admin):
    proposal = applied(proposer, admin)
    gpu = agent(pool="gpu")
    post_report(gpu, "gpu-1", report_body(sysctl=scope_report(1, DOC)))
    post_report(gpu, "gpu-2", report_body(sysctl=scope_report(1, DOC, observed={"net.core.somaxconn": "128"})))
    text = scrape()
    assert sample(text, "k_hosts", 'state="converged"') == 1 and sample(text, "k_hosts", 'state="drifted"') == 1
    assert sample(text, "k_hosts", 'state="stale"') == 0
    assert sample(text, "k_rollout_converged_ratio", f'scope="sysctl",tenant="{TENANT}"') == 0.5

    act(admin, proposal["id"], "rollback", {"reason": "revert the backlog change"})
    assert sample(scrape(), "k_rollout_converged_ratio", f'scope="sysctl",tenant="{TENANT}"') == 0.0
    for host in ("gpu-1", "gpu-2"):
        post_report(gpu, host, report_body(sysctl=scope_report(2, {})))
    text = scrape()
    assert sample(text, "k_rollout_converged_ratio", f'scope="sysctl",tenant="{TENANT}"') == 1.0  # rollback complete
    assert sample(text, "k_hosts", 'state="converged"') == 2
