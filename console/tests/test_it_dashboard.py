"""The dashboard answers "what needs me?" (console.dashboard): each panel with its data, only for the roles that read it.

Personas: a kernel admin (ada) who also administers webhooks, memory and modules; an auditor (carol); a memory
reader (mo); an outsider kernel admin of another tenant (eve). Rows are created through the services where one
exists (proposals, approvals, rollbacks) and as plain rows for the other apps' state (a failed delivery, an upload
in progress, a module host down), which is what those apps' workers would have written.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import act, persona, submit
from hooks.models import WebhookDelivery, WebhookEndpoint
from memory.models import MemoryProfile, Upload
from modules.models import Module

pytestmark = pytest.mark.django_db


def login(username: str, roles: list[str], tenant: str = "acme") -> Client:
    make_user(username, roles, tenant=tenant)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section class="card" id="{section_id}">(.*?)</section>', page, re.S)
    return match.group(1) if match else ""


@pytest.fixture()
def state() -> dict[str, str]:
    proposer = persona([Role.KERNEL_PROPOSER])
    api_admin = persona([Role.KERNEL_ADMIN], name="other")
    waiting = submit(proposer, risk_score=0.7)
    rolled = submit(proposer, changes=[{"key": "vm.swappiness", "from": None, "to": 10}])
    act(api_admin, rolled["id"], "approve")
    act(api_admin, rolled["id"], "rollback", {"reason": "p99"})
    endpoint = WebhookEndpoint.objects.create(tenant_id="acme", url="https://hooks.example/x", secret_encrypted="x")
    now = timezone.now()
    WebhookDelivery.objects.create(
        tenant_id="acme",
        endpoint=endpoint,
        event_id="00000000-0000-0000-0000-000000000001",
        event_type="kernel.proposal.applied",
        payload={},
        status="failed",
        last_status_code=500,
        last_error="server error",
    )
    old = WebhookDelivery.objects.create(
        tenant_id="acme",
        endpoint=endpoint,
        event_id="00000000-0000-0000-0000-000000000002",
        event_type="kernel.proposal.old",
        payload={},
        status="failed",
    )
    WebhookDelivery.objects.filter(pk=old.pk).update(updated_at=now - timedelta(hours=25))  # outside the 24 h
    profile = MemoryProfile.objects.create(tenant_id="acme", name="docs")
    Upload.objects.create(
        tenant_id="acme",
        profile=profile,
        profile_version=1,
        filename="handbook.pdf",
        total_chunks=4,
        received_chunks=1,
        object_key="k",
        expires_at=now + timedelta(hours=1),
    )
    Upload.objects.create(
        tenant_id="acme",
        profile=profile,
        profile_version=1,
        filename="done.pdf",
        total_chunks=1,
        received_chunks=1,
        state="complete",
        object_key="k2",
        expires_at=now + timedelta(hours=1),
    )
    Module.objects.create(tenant_id="acme", name="ocr", health="down", last_health_error="connection refused")
    Module.objects.create(tenant_id="acme", name="asr", health="up")
    Module.objects.create(tenant_id=OTHER_TENANT, name="theirs", health="down")
    return {"waiting": waiting["id"], "rolled": rolled["id"]}


def test_the_dashboard_shows_what_needs_an_admin(state):
    ada = login("ada", [Role.KERNEL_ADMIN, Role.HOOKS_ADMIN, Role.MEMORY_READER, Role.MODULES_ADMIN])
    page = ada.get("/console/").content.decode()
    awaiting = section(page, "awaiting")
    assert state["waiting"] in awaiting and "0/2" in awaiting and "/console/proposals/inbox/" in awaiting
    recent = section(page, "recent-changes")
    assert "rollback" in recent and "of 1" in recent and 'id="rollbacks-chart"' in recent
    assert re.findall(r'data-count="(\d+)"', recent)[-1] == "1"  # today's bar: the one rollback
    assert "last 14 days: 1" in recent
    failures = section(page, "webhook-failures")
    assert "kernel.proposal.applied" in failures and "kernel.proposal.old" not in failures and ">1</span>" in failures
    uploads = section(page, "uploads")
    assert "handbook.pdf" in uploads and "1/4" in uploads and "done.pdf" not in uploads
    hosts = section(page, "hosts-down")
    assert "ocr" in hosts and "connection refused" in hosts and "asr" not in hosts and "theirs" not in hosts
    assert 'id="open-incidents"' in page and 'id="readiness"' in page


def test_each_panel_is_only_for_the_roles_that_read_its_data(state):
    carol = login("carol", [Role.AUDITOR]).get("/console/").content.decode()
    assert 'id="awaiting"' not in carol  # an auditor approves nothing
    assert 'id="recent-changes"' in carol
    assert 'id="webhook-failures"' not in carol and 'id="hosts-down"' not in carol
    mo = login("mo", [Role.MEMORY_READER]).get("/console/").content.decode()
    assert 'id="uploads"' in mo and 'id="recent-changes"' not in mo and 'id="awaiting"' not in mo


def test_an_outsider_sees_nothing_of_another_tenant_and_anonymous_goes_to_login(state):
    eve = login("eve", [Role.KERNEL_ADMIN, Role.HOOKS_ADMIN, Role.MEMORY_READER, Role.MODULES_ADMIN], tenant=OTHER_TENANT)
    page = eve.get("/console/").content.decode()
    assert state["waiting"] not in page and "handbook.pdf" not in page and "kernel.proposal.applied" not in page
    assert "theirs" in section(page, "hosts-down")
    assert Client().get("/console/").status_code == 302
