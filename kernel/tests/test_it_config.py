"""GET /v1/kernel/config/{scope}[/revisions[/{n}]]: the current revision with ETag/304 and its history."""

from __future__ import annotations

import hashlib
import json

import pytest

from aion.roles import Role
from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, change, persona, submit

pytestmark = pytest.mark.django_db


def test_a_fresh_scope_is_revision_zero_and_an_unknown_scope_is_404(proposer):
    body = proposer.client.get("/v1/kernel/config/sysctl").json()
    assert body["revision"] == 0 and body["document"] == {} and body["proposal_id"] is None
    assert proposer.client.get("/v1/kernel/config/nope").status_code == 404
    assert proposer.client.get("/v1/kernel/config/nope/revisions").status_code == 404


def test_current_revision_etag_and_304(proposer, admin):
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    host = persona([Role.MODULES_ADMIN], name="module host")
    response = host.client.get("/v1/kernel/config/sysctl")
    assert response.status_code == 200
    body = response.json()
    assert {"scope", "revision", "document", "sha256", "created_at", "proposal_id"} <= body.keys()
    assert body["revision"] == 1 and body["document"] == {"net.core.somaxconn": 1024}
    assert body["proposal_id"] == proposal["id"]
    assert body["sha256"] == hashlib.sha256(json.dumps(body["document"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    etag = response["ETag"]
    cached = host.client.get("/v1/kernel/config/sysctl", HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304 and cached["ETag"] == etag

    second = submit(proposer, changes=[change(frm=1024, to=2048)])
    act(admin, second["id"], "approve")
    changed = host.client.get("/v1/kernel/config/sysctl", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["revision"] == 2 and changed["ETag"] != etag


def test_revisions_list_and_detail(proposer, admin):
    for frm, to in ((None, 1024), (1024, 2048)):
        proposal = submit(proposer, changes=[change(frm=frm, to=to)])
        act(admin, proposal["id"], "approve")
    listed = proposer.client.get("/v1/kernel/config/sysctl/revisions").json()
    assert listed["count"] == 2 and [r["revision"] for r in listed["results"]] == [2, 1]
    one = proposer.client.get("/v1/kernel/config/sysctl/revisions/1")
    assert one.status_code == 200 and one.json()["document"] == {"net.core.somaxconn": 1024} and one["ETag"]
    assert proposer.client.get("/v1/kernel/config/sysctl/revisions/9").status_code == 404


def test_negative_authorisation(proposer, admin, outsider):
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    assert api_client().get("/v1/kernel/config/sysctl").status_code == 401
    assert persona([Role.MEMORY_WRITER]).client.get("/v1/kernel/config/sysctl").status_code == 403
    # another tenant sees its own (empty) scope, never ours
    assert outsider.client.get("/v1/kernel/config/sysctl").json()["revision"] == 0
    assert outsider.client.get("/v1/kernel/config/sysctl/revisions/1").status_code == 404
