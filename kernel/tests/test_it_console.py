"""The Console flow with Django's test client: one user proposes, another approves (applies), then rolls back."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import act, persona, submit
from kernel.models import ConfigRevision, Proposal

pytestmark = pytest.mark.django_db


def login(username: str, roles: list[str], tenant: str = "acme") -> Client:
    make_user(username, roles, tenant=tenant)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


def metric_value(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_two_users_propose_approve_apply_and_roll_back(django_capture_on_commit_callbacks):
    alice = login("alice", [Role.KERNEL_PROPOSER, Role.KERNEL_ADMIN])
    bob = login("bob", [Role.KERNEL_ADMIN])
    labels = 'scope="sysctl",tenant="acme"'
    before = metric_value(Client().get("/metrics").content.decode(), "k_rollbacks_total", labels)

    form = alice.get("/console/proposals/new/?scope=sysctl")
    assert form.status_code == 200 and b"net.core.somaxconn" in form.content
    response = alice.post(
        "/console/proposals/new/",
        {
            "scope": "sysctl",
            "base_revision": "0",
            "changes": "net.core.somaxconn = 4096\nvm.swappiness = 10",
            "justification": "Ingest pool backlog",
            "risk_score": "0.2",
            "ttl_seconds": "3600",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    proposal = Proposal.objects.get()
    assert proposal.proposer == "user:alice" and proposal.changes[0] == {"key": "net.core.somaxconn", "from": None, "to": 4096}

    # Alice sees her own proposal with the buttons disabled and a tooltip; Bob sees them enabled.
    own = alice.get(f"/console/proposals/{proposal.pk}/").content.decode()
    assert re.search(r'data-action="approve" disabled title="You proposed this', own)
    page = bob.get(f"/console/proposals/{proposal.pk}/").content.decode()
    assert 'data-action="approve"' in page and 'data-action="approve" disabled' not in page
    assert '<dialog id="dialog-approve">' in page and "csrfmiddlewaretoken" in page
    assert 'class="countdown"' in page and "diff-old" in page and "diff-new" in page
    etag = page_etag(page)

    bob_csrf = Client(enforce_csrf_checks=True)
    bob_csrf.force_login(proposal_user("bob"))
    assert bob_csrf.post(f"/console/proposals/{proposal.pk}/approve", {"etag": etag, "text": "ok"}).status_code == 403  # no CSRF token

    approved = bob.post(f"/console/proposals/{proposal.pk}/approve", {"etag": etag, "text": "looks good"}, follow=True)
    assert approved.status_code == 200 and b"now applied" in approved.content
    proposal.refresh_from_db()
    assert proposal.state == "applied" and proposal.applied_revision.document == {"net.core.somaxconn": 4096, "vm.swappiness": 10}

    page = bob.get(f"/console/proposals/{proposal.pk}/").content.decode()
    etag = page_etag(page)
    assert 'data-action="rollback"' in page
    with django_capture_on_commit_callbacks(execute=True):
        rolled = bob.post(f"/console/proposals/{proposal.pk}/rollback", {"etag": etag, "text": "p99 regression"}, follow=True)
    assert b"now rolled back" in rolled.content
    proposal.refresh_from_db()
    assert proposal.state == "rolled_back"

    config = bob.get("/console/proposals/config/sysctl/").content.decode()
    assert [int(n) for n in re.findall(r'data-revision="(\d+)"', config)] == [2, 1]
    assert "Empty: revision 2 (rollback of revision 1) sets no keys." in config  # the rollback restored the empty document
    assert "nothing applied yet" not in config
    diff = bob.get("/console/proposals/config/sysctl/?a=1&b=2").content.decode()
    assert 'data-status="removed"' in diff
    history = bob.get(f"/console/proposals/{proposal.pk}/").content.decode()
    for action in ("kernel.proposal.submit", "kernel.proposal.approve", "kernel.proposal.apply", "kernel.proposal.rollback"):
        assert action in history

    metrics = Client().get("/metrics").content.decode()
    assert metric_value(metrics, "k_rollbacks_total", labels) == before + 1


def page_etag(page: str) -> str:
    return html.unescape(re.search(r'name="etag" value="([^"]+)"', page).group(1))


def proposal_user(username: str):
    from django.contrib.auth.models import User

    return User.objects.get(username=username)


def test_a_stale_page_gets_a_clear_message_and_nothing_happens():
    proposer = persona([Role.KERNEL_PROPOSER])
    other_admin = persona([Role.KERNEL_ADMIN], name="other admin")
    carol = login("carol", [Role.KERNEL_ADMIN])
    proposal = submit(proposer, risk_score=0.7)
    page = carol.get(f"/console/proposals/{proposal['id']}/").content.decode()
    etag = page_etag(page)
    act(other_admin, proposal["id"], "approve")  # the page is now stale
    response = carol.post(f"/console/proposals/{proposal['id']}/approve", {"etag": etag, "text": ""}, follow=True)
    assert b"changed while you were looking at it" in response.content
    assert Proposal.objects.get(pk=proposal["id"]).approvals.count() == 1


def test_list_tabs_counts_and_buttons_only_for_admins():
    proposer = persona([Role.KERNEL_PROPOSER])
    admin = persona([Role.KERNEL_ADMIN], name="admin")
    applied = submit(proposer)
    act(admin, applied["id"], "approve")
    pending = submit(proposer, changes=[{"key": "vm.swappiness", "from": None, "to": 10}])
    viewer = login("dave", [Role.AUDITOR])
    listing = viewer.get("/console/proposals/").content.decode()
    assert re.search(r'data-state="">All <span class="count">2</span>', listing)
    assert re.search(r'data-state="pending">Pending <span class="count">1</span>', listing)
    assert re.search(r'data-state="applied">Applied <span class="count">1</span>', listing)
    assert " ago" in listing and 'id="kernel-live"' in listing
    only_pending = viewer.get("/console/proposals/?state=pending").content.decode()
    assert pending["id"] in only_pending and applied["id"] not in only_pending
    detail = viewer.get(f"/console/proposals/{pending['id']}/").content.decode()
    assert "data-action=" not in detail  # auditors read, never act
    assert viewer.post(f"/console/proposals/{pending['id']}/approve", {"text": ""}).status_code == 403
    fingerprint = viewer.get("/console/proposals/changes.json").json()["fingerprint"]
    act(admin, pending["id"], "reject", {"reason": "no"})
    assert viewer.get("/console/proposals/changes.json").json()["fingerprint"] != fingerprint


def test_console_negative_authorisation():
    proposer = persona([Role.KERNEL_PROPOSER])
    proposal = submit(proposer)
    anonymous = Client().get("/console/proposals/")
    assert anonymous.status_code == 302 and "/console/login/" in anonymous["Location"]
    nobody = login("erin", [Role.MEMORY_READER])
    assert nobody.get("/console/proposals/").status_code == 403
    outsider = login("frank", [Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER], tenant=OTHER_TENANT)
    assert outsider.get(f"/console/proposals/{proposal['id']}/").status_code == 404
    assert outsider.post(f"/console/proposals/{proposal['id']}/approve", {"text": ""}).status_code == 404
    assert ConfigRevision.objects.count() == 0
    proposer_only = login("gina", [Role.KERNEL_PROPOSER])
    assert proposer_only.post(f"/console/proposals/{proposal['id']}/approve", {"text": ""}).status_code == 403
    # The new-proposal page is guarded by the platform's role_required: a refused write is also audited.
    assert nobody.get("/console/proposals/new/").status_code == 403
    assert nobody.post("/console/proposals/new/", {"scope": "sysctl"}).status_code == 403
    assert AuditRecord.objects.filter(action="access.denied", actor__contains="erin").exists()


def test_the_new_proposal_form_shows_policy_errors_and_drift():
    hank = login("hank", [Role.KERNEL_PROPOSER])
    form = {"scope": "sysctl", "base_revision": "0", "justification": "x", "risk_score": "0.1", "ttl_seconds": ""}
    bad = hank.post("/console/proposals/new/", {**form, "changes": "net.core.somaxconn = 5"}).content.decode()
    assert "Line 1 (net.core.somaxconn): must be between 128 and 65535" in bad
    assert "kernel.panic" in hank.post("/console/proposals/new/", {**form, "changes": "kernel.panic = 1"}).content.decode()
    admin = persona([Role.KERNEL_ADMIN], name="admin")
    applied = submit(persona([Role.KERNEL_PROPOSER], name="p"))
    act(admin, applied["id"], "approve")  # somaxconn moved after hank opened the form at revision 0
    drift = hank.post("/console/proposals/new/", {**form, "changes": "net.core.somaxconn = 2048"}).content.decode()
    assert "The configuration changed since this form was opened (net.core.somaxconn)" in drift
    assert Proposal.objects.count() == 1
