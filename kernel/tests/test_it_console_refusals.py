"""Console actions show a service's refusal (an aion.errors kind) by its detail and field errors, as a problem's were."""

from __future__ import annotations

import html

import pytest

from aion.roles import Role
from aion.testing.kernel_proposals import act, persona, submit
from kernel.models import Proposal
from kernel.tests.test_it_console import login, page_etag

pytestmark = pytest.mark.django_db


def messages_of(response) -> str:
    return html.unescape(response.content.decode())


def test_a_refused_action_shows_the_detail_and_the_field_errors_and_changes_nothing():
    proposer = persona([Role.KERNEL_PROPOSER])
    erin = login("erin", [Role.KERNEL_ADMIN])
    proposal = submit(proposer, risk_score=0.7)
    etag = page_etag(erin.get(f"/console/proposals/{proposal['id']}/").content.decode())
    response = erin.post(f"/console/proposals/{proposal['id']}/reject", {"etag": etag, "text": "  "}, follow=True)
    assert response.status_code == 200
    assert "A reason is required to reject a proposal. reason: A reason is required." in messages_of(response)
    assert Proposal.objects.get(pk=proposal["id"]).state == "pending"


def test_separation_of_duties_and_an_invalid_transition_are_shown_by_their_detail():
    frank = login("frank", [Role.KERNEL_PROPOSER, Role.KERNEL_ADMIN])
    admin = persona([Role.KERNEL_ADMIN], name="admin")
    own = submit(persona([Role.KERNEL_PROPOSER], name="proposer"), risk_score=0.7)
    Proposal.objects.filter(pk=own["id"]).update(proposer="user:frank")  # frank's own proposal
    refused = frank.post(f"/console/proposals/{own['id']}/approve", {"text": ""}, follow=True)
    assert "Separation of duties: the proposer cannot approve their own proposal." in messages_of(refused)
    assert Proposal.objects.get(pk=own["id"]).approvals.count() == 0

    applied = submit(persona([Role.KERNEL_PROPOSER], name="other proposer"))
    act(admin, applied["id"], "approve")
    again = frank.post(f"/console/proposals/{applied['id']}/approve", {"text": ""}, follow=True)
    assert "Cannot approve a proposal in state 'applied'." in messages_of(again)
