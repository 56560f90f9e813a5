"""Console: the hosts page (the API's HostFilterSet) and the live rollout panel on the proposal detail and the scope
page (an htmx partial polled every 2 s), with the observed values of a drifted host and rollback completion."""

from __future__ import annotations

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import act
from kernel.tests.hosts_support import agent, applied, post_report, report_body, scope_report

pytestmark = pytest.mark.django_db

DOC = {"net.core.somaxconn": 1024}


def login(username: str, roles: list[str], tenant: str = "acme") -> Client:
    make_user(username, roles, tenant=tenant)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


@pytest.fixture()
def fleet(proposer, admin):
    proposal = applied(proposer, admin)
    gpu = agent(pool="gpu")
    post_report(gpu, "gpu-1", report_body(sysctl=scope_report(1, DOC)))
    post_report(gpu, "gpu-2", report_body(sysctl=scope_report(1, DOC, observed={"net.core.somaxconn": "4096"})))
    return proposal, gpu


def test_the_hosts_page_lists_and_filters_hosts(fleet):
    viewer = login("ann", [Role.AUDITOR])
    page = viewer.get("/console/proposals/hosts/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-host="gpu-1" data-state="converged"' in text and 'data-host="gpu-2" data-state="drifted"' in text
    assert "4096" in text  # the drifted host's observed value
    drifted = viewer.get("/console/proposals/hosts/?state=drifted").content.decode()
    assert 'data-host="gpu-2"' in drifted and 'data-host="gpu-1"' not in drifted
    bad = viewer.get("/console/proposals/hosts/?state=sideways")
    assert bad.status_code == 200 and b'id="filter-errors"' in bad.content


def test_the_proposal_and_scope_pages_poll_the_rollout_panel(fleet):
    proposal, _ = fleet
    viewer = login("ann", [Role.KERNEL_PROPOSER])
    detail = viewer.get(f"/console/proposals/{proposal['id']}/").content.decode()
    panel = f"/console/proposals/hosts/rollout/proposal/{proposal['id']}/"
    assert f'hx-get="{panel}"' in detail and 'hx-trigger="load, every 2s"' in detail
    body = viewer.get(panel).content.decode()
    assert 'data-converged="1" data-targeted="2"' in body and "4096" in body
    scope_page = viewer.get("/console/proposals/config/sysctl/").content.decode()
    assert 'hx-get="/console/proposals/hosts/rollout/scope/sysctl/"' in scope_page
    assert 'data-revision="1"' in viewer.get("/console/proposals/hosts/rollout/scope/sysctl/").content.decode()


def test_rollback_completion_shows_on_the_proposal(fleet, admin):
    proposal, gpu = fleet
    act(admin, proposal["id"], "rollback", {"reason": "revert the backlog change"})
    viewer = login("ann", [Role.KERNEL_ADMIN])
    panel = f"/console/proposals/hosts/rollout/proposal/{proposal['id']}/"
    assert b'id="rollback-incomplete"' in viewer.get(panel).content
    for host in ("gpu-1", "gpu-2"):
        post_report(gpu, host, report_body(sysctl=scope_report(2, {})))
    assert b'id="rollback-complete"' in viewer.get(panel).content


def test_negative_authorisation(fleet):
    proposal, _ = fleet
    paths = [
        "/console/proposals/hosts/",
        f"/console/proposals/hosts/rollout/proposal/{proposal['id']}/",
        "/console/proposals/hosts/rollout/scope/sysctl/",
    ]
    teammate = login("tom", [Role.MEMORY_READER])
    outsider = login("olga", [Role.KERNEL_ADMIN], tenant=OTHER_TENANT)
    for path in paths:
        assert teammate.get(path).status_code == 403, path
        assert Client().get(path).status_code == 302, path  # to the login page
    assert 'data-host="gpu-1"' not in outsider.get(paths[0]).content.decode()
    assert outsider.get(paths[1]).status_code == 404
    assert b'data-host="gpu-1"' not in outsider.get(paths[2]).content
