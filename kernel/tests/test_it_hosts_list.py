"""GET /v1/kernel/hosts: every host with pool, last report, revision per scope and live state, filtered by pool and state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client
from aion.testing.kernel_proposals import change, persona
from kernel.models import Host
from kernel.tests.hosts_support import agent, applied, post_report, report_body, scope_report

pytestmark = pytest.mark.django_db

DOC = {"net.core.somaxconn": 1024}


@pytest.fixture()
def fleet(proposer, admin):
    applied(proposer, admin)
    gpu, cpu = agent(pool="gpu", name="gpu agents"), agent(pool="cpu", name="cpu agents")
    post_report(gpu, "gpu-1", report_body("gpu", sysctl=scope_report(1, DOC)))
    post_report(gpu, "gpu-2", report_body("gpu", sysctl=scope_report(1, DOC, observed={"net.core.somaxconn": "128"})))
    post_report(cpu, "cpu-1", report_body("cpu", sysctl=scope_report(0, {})))
    return gpu, cpu


def states(client, query=""):
    body = client.get(f"/v1/kernel/hosts{query}").json()
    return {host["name"]: host["state"] for host in body["results"]}


def test_every_host_with_its_state_and_revision_per_scope(admin, fleet):
    body = admin.client.get("/v1/kernel/hosts").json()
    assert body["count"] == 3
    by_name = {host["name"]: host for host in body["results"]}
    assert {n: h["state"] for n, h in by_name.items()} == {"cpu-1": "pending", "gpu-1": "converged", "gpu-2": "drifted"}
    gpu1 = by_name["gpu-1"]
    assert gpu1["pool"] == "gpu" and gpu1["last_report_at"] and gpu1["scopes"]["sysctl"]["revision"] == 1
    assert by_name["gpu-2"]["scopes"]["sysctl"]["drifted_keys"][0]["observed"] == "128"


def test_filters_by_pool_state_and_name(admin, fleet):
    assert set(states(admin.client, "?pool=gpu")) == {"gpu-1", "gpu-2"}
    assert states(admin.client, "?state=drifted") == {"gpu-2": "drifted"}
    assert set(states(admin.client, "?state=drifted&state=pending")) == {"gpu-2", "cpu-1"}
    assert set(states(admin.client, "?name=gpu")) == {"gpu-1", "gpu-2"}
    assert admin.client.get("/v1/kernel/hosts?state=sideways").status_code == 400
    assert admin.client.get("/v1/kernel/hosts?limit=1").json()["count"] == 3


def test_a_new_revision_makes_converged_hosts_pending_without_a_report(proposer, admin, fleet):
    applied(proposer, admin, changes=[change("net.core.somaxconn", 1024, 2048)])
    assert states(admin.client, "?pool=gpu")["gpu-1"] == "pending"


def test_a_pools_revision_leaves_other_pools_converged(proposer, admin, fleet):
    applied(proposer, admin, target="cpu", changes=[change("vm.swappiness", None, 10)])
    assert states(admin.client)["gpu-1"] == "converged"


def test_no_report_within_the_stale_window_is_stale(admin, fleet, settings):
    settings.AION_KERNEL_HOST_STALE_SECONDS = 60
    Host.objects.filter(name="gpu-1").update(last_report_at=timezone.now() - timedelta(seconds=61))
    assert states(admin.client)["gpu-1"] == "stale"
    assert states(admin.client, "?state=stale") == {"gpu-1": "stale"}


def test_negative_authorisation(fleet):
    auditor = persona([Role.AUDITOR], name="auditor")
    assert auditor.client.get("/v1/kernel/hosts").status_code == 200
    assert persona([Role.MEMORY_READER], name="teammate").client.get("/v1/kernel/hosts").status_code == 403
    assert agent(pool="gpu", name="an agent").client.get("/v1/kernel/hosts").status_code == 403  # agents write reports only
    outsider = persona([Role.KERNEL_ADMIN], tenant=OTHER_TENANT, name="outsider")
    assert outsider.client.get("/v1/kernel/hosts").json()["count"] == 0
    assert api_client().get("/v1/kernel/hosts").status_code == 401
