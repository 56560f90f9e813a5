"""Kernel metrics on the /metrics scrape: ``k_proposals_total{state}`` and the submission-to-approval and
submission-to-apply histogram ``k_proposal_lead_time_seconds{stage}`` (k_rollbacks_total and
k_breakglass_total are checked in test_it_rollback.py, test_it_console.py and test_it_breakglass.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from aion.testing.kernel_proposals import act, change, submit

pytestmark = pytest.mark.django_db


def scrape() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def sample(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_transitions_count_by_state_and_lead_times_are_observed(proposer, admin, django_capture_on_commit_callbacks):
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        proposal = submit(proposer)
        rejected = submit(proposer, changes=[change("vm.swappiness", None, 10)])
    later = timezone.now() + timedelta(seconds=90)
    with mock.patch("django.utils.timezone.now", return_value=later), django_capture_on_commit_callbacks(execute=True):
        assert act(admin, proposal["id"], "approve").json()["state"] == "applied"  # auto-apply
        assert act(admin, rejected["id"], "reject", {"reason": "not now"}).status_code == 200
    after = scrape()

    def delta(name: str, labels: str) -> float:
        return sample(after, name, labels) - sample(before, name, labels)

    assert delta("k_proposals_total", 'state="pending"') == 2
    assert delta("k_proposals_total", 'state="approved"') == 1
    assert delta("k_proposals_total", 'state="applied"') == 1
    assert delta("k_proposals_total", 'state="rejected"') == 1
    for stage in ("approved", "applied"):
        assert delta("k_proposal_lead_time_seconds_count", f'stage="{stage}"') == 1
        assert 89 <= delta("k_proposal_lead_time_seconds_sum", f'stage="{stage}"') <= 120
        # 90 s falls in the 300 s bucket, not the 60 s one
        assert delta("k_proposal_lead_time_seconds_bucket", f'le="60.0",stage="{stage}"') == 0
        assert delta("k_proposal_lead_time_seconds_bucket", f'le="300.0",stage="{stage}"') == 1


def test_a_refused_transition_counts_nothing(proposer, admin, django_capture_on_commit_callbacks):
    proposal = submit(proposer)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        assert act(proposer, proposal["id"], "approve").status_code == 403
        assert act(admin, proposal["id"], "rollback", {"reason": "x"}).status_code == 409
    after = scrape()
    for state in ("approved", "applied", "rolled_back"):
        assert sample(after, "k_proposals_total", f'state="{state}"') == sample(before, "k_proposals_total", f'state="{state}"')
