"""POST /v1/kernel/hosts/{host}/report: a node agent's observed state, stored per host and scope.

Personas: the owner's agent (kernel.agent bound to its host or pool), a teammate without the role (kernel.admin),
an agent of another tenant, and no credential (concurrent reports: test_it_host_report_concurrency.py).
"""

from __future__ import annotations

import pytest

from aion.models import AuditRecord, OutboxEvent
from aion.testing.factories import OTHER_TENANT, TENANT
from aion.topics import KERNEL_HOSTS, validate_event
from kernel.models import Host, HostScope
from kernel.tests.hosts_support import agent, applied, post_report, report_body, scope_report

pytestmark = pytest.mark.django_db

DOC = {"net.core.somaxconn": 1024}


def test_an_agent_reports_its_host_and_converges(proposer, admin):
    applied(proposer, admin)
    node = agent(host="gpu-1")
    response = post_report(node, "gpu-1", report_body(sysctl=scope_report(1, DOC)))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "gpu-1" and body["pool"] == "gpu" and body["state"] == "converged"
    assert body["scopes"]["sysctl"]["revision"] == 1 and body["scopes"]["sysctl"]["desired_revision"] == 1
    host = Host.objects.get(tenant_id=TENANT, name="gpu-1")
    assert host.reports == 1 and host.state == "converged"
    assert HostScope.objects.get(host=host, scope="sysctl").observed == {"net.core.somaxconn": "1024"}
    # The first report is a transition (none -> converged): audited and published once.
    assert AuditRecord.objects.filter(action="kernel.host.converged", resource_id="gpu-1").count() == 1
    post_report(node, "gpu-1", {**report_body(sysctl=scope_report(1, DOC)), "heartbeat": True})
    assert AuditRecord.objects.filter(resource_type="kernel.host").count() == 1
    assert Host.objects.get(pk=host.pk).reports == 2


def test_an_older_revision_is_pending(proposer, admin):
    applied(proposer, admin)
    body = post_report(agent(host="gpu-1"), "gpu-1", report_body(sysctl=scope_report(0, {}))).json()
    assert body["state"] == "pending" and body["scopes"]["sysctl"]["desired_revision"] == 1


def test_the_first_drift_is_audited_and_published_once(proposer, admin):
    applied(proposer, admin)
    node = agent(host="gpu-1")
    post_report(node, "gpu-1", report_body(sysctl=scope_report(1, DOC)))
    hand_edit = report_body(sysctl=scope_report(1, DOC, observed={"net.core.somaxconn": "4096"}))
    body = post_report(node, "gpu-1", hand_edit).json()
    assert body["state"] == "drifted"
    assert body["scopes"]["sysctl"]["drifted_keys"] == [{"key": "net.core.somaxconn", "desired": 1024, "observed": "4096"}]
    post_report(node, "gpu-1", hand_edit)  # still drifted: no second record
    records = AuditRecord.objects.filter(action="kernel.host.drifted", resource_id="gpu-1")
    assert records.count() == 1
    record = records.get()
    assert record.before["state"] == "converged" and record.after["state"] == "drifted"
    assert record.metadata["previous_state"] == "converged"
    events = OutboxEvent.objects.filter(topic=KERNEL_HOSTS, event_type="kernel.host.drifted")
    assert events.count() == 1
    event = events.get()
    validate_event(KERNEL_HOSTS, event.envelope)
    assert event.key == "gpu-1" and event.envelope["data"]["host"]["scopes"]["sysctl"]["drifted_keys"][0]["observed"] == "4096"


def test_a_failed_key_or_an_agent_error_is_failed(proposer, admin):
    applied(proposer, admin)
    node = agent(host="gpu-1")
    failing = scope_report(1, DOC, **{"net.core.somaxconn": {"outcome": "failed", "error": "EACCES"}})
    body = post_report(node, "gpu-1", report_body(sysctl=failing)).json()
    assert body["state"] == "failed" and body["scopes"]["sysctl"]["failed_keys"] == [{"key": "net.core.somaxconn", "error": "EACCES"}]
    errors = {**report_body(sysctl=scope_report(1, DOC)), "errors": ["cannot read /proc/modules"]}
    assert post_report(node, "gpu-1", errors).json()["state"] == "failed"


def test_a_host_bound_key_reports_for_its_host_only():
    response = post_report(agent(host="gpu-1"), "gpu-2", report_body())
    assert response.status_code == 403
    assert response.json()["type"] == "urn:aion:problem:host-binding"
    assert not Host.objects.exists()


def test_a_pool_bound_key_reports_for_hosts_of_its_pool_only():
    fleet = agent(pool="gpu")
    assert post_report(fleet, "gpu-1", report_body(pool="gpu")).status_code == 200
    refused = post_report(fleet, "cpu-1", report_body(pool="cpu"))
    assert refused.status_code == 403 and refused.json()["type"] == "urn:aion:problem:pool-binding"
    # A host already known in another pool is outside the key's pool, whatever the body says.
    post_report(agent(host="cpu-9"), "cpu-9", report_body(pool="cpu"))
    hijack = post_report(fleet, "cpu-9", report_body(pool="gpu"))
    assert hijack.status_code == 403
    assert Host.objects.get(name="cpu-9").pool == "cpu"


def test_an_unbound_agent_key_may_not_report():
    response = post_report(agent(), "gpu-1", report_body())
    assert response.status_code == 403 and response.json()["type"] == "urn:aion:problem:unbound-agent"


def test_negative_authorisation_teammate_outsider_and_anonymous(admin):
    from aion.testing.factories import api_client

    assert post_report(admin, "gpu-1", report_body()).status_code == 403  # teammate: no kernel.agent role
    foreign = agent(host="gpu-1", tenant=OTHER_TENANT, name="their agent")
    assert post_report(foreign, "gpu-1", report_body()).status_code == 200  # its own tenant's host of that name
    assert not Host.objects.filter(tenant_id=TENANT).exists()
    assert Host.objects.filter(tenant_id=OTHER_TENANT, name="gpu-1").exists()
    assert api_client().post("/v1/kernel/hosts/gpu-1/report", report_body(), format="json").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {},
        {"pool": ""},
        {"pool": "gpu", "extra": 1},
        {"pool": "gpu", "heartbeat": "yes"},
        {"pool": "gpu", "errors": "boom"},
        {"pool": "gpu", "errors": ["x" * 5000]},
        {"pool": "gpu", "scopes": []},
        {"pool": "gpu", "scopes": {f"s{i}": {} for i in range(40)}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": -1, "sha256": "0" * 64}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 2**40, "sha256": "0" * 64}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": True, "sha256": "0" * 64}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "nothex"}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "0" * 64, "observed": {"k": 1}}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "0" * 64, "observed": {"k": "v" * 2000}}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "0" * 64, "observed": {f"k{i}": "1" for i in range(600)}}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "0" * 64, "results": {"k": {"outcome": "maybe"}}}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "0" * 64, "results": {"k": "applied"}}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "0" * 64, "results": {"k": {"outcome": "failed", "error": 5}}}}},
        {"pool": "gpu", "scopes": {"sysctl": {"revision": 1, "sha256": "0" * 64, "colour": "red"}}},
    ],
)
def test_garbage_is_a_400_problem_never_a_500(body):
    response = post_report(agent(host="gpu-1"), "gpu-1", body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert not Host.objects.exists()


@pytest.mark.parametrize("host", ["-bad", "a" * 300, "a b", "ünï"])
def test_a_bad_host_name_is_refused(host):
    response = post_report(agent(pool="gpu"), host, report_body())
    assert response.status_code in (400, 404)
    assert not Host.objects.exists()
