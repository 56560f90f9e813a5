"""Django admin shows proposals, approvals and revisions read-only: changes only go through kernel.services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from aion.testing.kernel_proposals import act, submit
from kernel.models import ConfigRevision, Proposal

pytestmark = pytest.mark.django_db


def test_a_superuser_reads_but_cannot_add_change_or_delete(proposer, admin):
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    revision = ConfigRevision.objects.get()
    User.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client = Client()
    assert client.login(username="root", password="pw-for-tests-only")

    for url in (
        "/admin/kernel/proposal/",
        f"/admin/kernel/proposal/{proposal['id']}/change/",
        f"/admin/kernel/configrevision/{revision.pk}/change/",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        assert b'name="_save"' not in page.content, url
    assert client.get("/admin/kernel/proposal/add/").status_code == 403
    assert client.get("/admin/kernel/configrevision/add/").status_code == 403
    client.post(f"/admin/kernel/proposal/{proposal['id']}/change/", {"state": "pending", "justification": "edited"})
    client.post(f"/admin/kernel/proposal/{proposal['id']}/delete/", {"post": "yes"})
    stored = Proposal.objects.get(pk=proposal["id"])
    assert stored.state == "applied" and stored.justification != "edited"
    assert ConfigRevision.objects.count() == 1
