"""Expiry: the beat job ``kernel.expire_proposals`` marks open proposals past their TTL; reads see it at once."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from aion.testing.kernel_proposals import act, assert_valid_event, change, kernel_events, submit
from kernel.models import Proposal
from kernel.tasks import expire_proposals

pytestmark = pytest.mark.django_db


def later(seconds: int):
    return mock.patch("django.utils.timezone.now", return_value=timezone.now() + timedelta(seconds=seconds))


def test_the_beat_job_expires_pending_and_approved_proposals(proposer, admin, policy_file):
    policy_file(auto_apply=False)
    pending = submit(proposer, ttl_seconds=60)
    approved = submit(proposer, ttl_seconds=60, changes=[change("vm.swappiness", None, 10)])
    act(admin, approved["id"], "approve")
    fresh = submit(proposer, ttl_seconds=3600, changes=[change("net.ipv4.tcp_fin_timeout", None, 30)])
    with later(61):
        assert expire_proposals() == 2
        assert expire_proposals() == 0
    states = dict(Proposal.objects.values_list("id", "state"))
    assert {str(k): v for k, v in states.items()} == {pending["id"]: "expired", approved["id"]: "expired", fresh["id"]: "pending"}
    event = kernel_events(pending["id"])[-1]
    assert event.event_type == "kernel.proposal.expired"
    assert assert_valid_event(event)["data"]["previous_state"] == "pending"


def test_reads_and_actions_see_expiry_before_the_job_runs(proposer, admin):
    proposal = submit(proposer, ttl_seconds=60)
    with later(120):
        assert proposer.client.get(f"/v1/kernel/proposals/{proposal['id']}").json()["state"] == "expired"
    other = submit(proposer, ttl_seconds=60, changes=[change("vm.swappiness", None, 10)])
    with later(120):
        listed = proposer.client.get("/v1/kernel/proposals?state=pending").json()
        assert listed["count"] == 0
        response = act(admin, other["id"], "approve")
    assert response.status_code == 409 and response.json()["state"] == "expired"
