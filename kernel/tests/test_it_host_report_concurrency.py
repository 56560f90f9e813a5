"""Concurrent reports of one new host through the real API on PostgreSQL: one host row, every report counted.

Each request runs in its own thread with its own database connection (``run_together``), so the unique
constraint races and the host row lock are PostgreSQL's own.
"""

from __future__ import annotations

import pytest

from aion.models import AuditRecord
from aion.testing.concurrency import run_together
from aion.testing.factories import TENANT
from kernel.models import Host, HostScope
from kernel.tests.hosts_support import agent, applied, post_report, report_body, scope_report

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAYS = 8
DOC = {"net.core.somaxconn": 1024}


def test_concurrent_first_reports_of_one_host_store_one_host(proposer, admin):
    applied(proposer, admin)
    node = agent(pool="gpu")
    bodies = [report_body(sysctl=scope_report(1, DOC)) for _ in range(WAYS)]
    results = run_together([lambda body=body: post_report(node, "gpu-1", body) for body in bodies])
    assert [getattr(r, "status_code", r) for r in results] == [200] * WAYS
    host = Host.objects.get(tenant_id=TENANT, name="gpu-1")
    assert host.reports == WAYS and host.state == "converged"
    assert HostScope.objects.filter(host=host).count() == 1
    # One transition (none -> converged), however many reports raced to be first.
    assert AuditRecord.objects.filter(resource_type="kernel.host", resource_id="gpu-1").count() == 1


def test_concurrent_reports_of_many_hosts_of_one_pool(proposer, admin):
    applied(proposer, admin)
    node = agent(pool="gpu")
    results = run_together([lambda i=i: post_report(node, f"gpu-{i}", report_body(sysctl=scope_report(1, DOC))) for i in range(WAYS)])
    assert [getattr(r, "status_code", r) for r in results] == [200] * WAYS
    assert Host.objects.filter(tenant_id=TENANT, pool="gpu", state="converged").count() == WAYS
