"""Concurrent applies and rollbacks on one scope, 20 at a time, through the real API on PostgreSQL.

Each request runs in its own thread with its own database connection (``run_together``), so
the row locks, READ COMMITTED re-reads and unique constraints are PostgreSQL's own.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from aion.roles import Role
from aion.testing.concurrency import run_together
from aion.testing.kernel_proposals import SHIPPED_POLICY, Persona, act, change, kernel_events, persona, submit
from kernel.models import ConfigRevision, ConfigScope, Proposal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAYS = 20
SCOPE = "wide"
KEYS = [f"key.{i:02d}" for i in range(WAYS)]
SEED_KEY = "key.seed"


@pytest.fixture()
def wide_policy(policy_file: Callable[..., Path]) -> Path:
    """The shipped policy plus a scope with enough allowlisted keys for 20 disjoint proposals."""
    data = yaml.safe_load(SHIPPED_POLICY.read_text())
    data["scopes"][SCOPE] = {
        "description": "Twenty-one integer keys, one per concurrent proposal",
        "keys": {key: {"type": "integer", "min": 0, "max": 1000} for key in [SEED_KEY, *KEYS]},
    }
    return policy_file(yaml.safe_dump(data))


def second_admin_responses(
    proposer: Persona, first: Persona, seconds: list[Persona], *, frm: int | None
) -> tuple[list[dict[str, Any]], list[Any]]:
    """20 proposals on SCOPE (key i from FRM to i + 1, risk 0.7: two approvals), each approved once
    by FIRST, then each approved by its own second admin at the same instant (the approval that applies)."""
    proposals = [submit(proposer, scope=SCOPE, changes=[change(key, frm, index + 1)], risk_score=0.7) for index, key in enumerate(KEYS)]
    for proposal in proposals:
        assert act(first, proposal["id"], "approve").status_code == 200
    responses = run_together([lambda p=p, a=a: act(a, p["id"], "approve") for p, a in zip(proposals, seconds, strict=True)])
    return proposals, responses


def assert_twenty_applied(proposals: list[dict[str, Any]], responses: list[Any], *, numbers: list[int], document: dict[str, Any]) -> None:
    assert not [r for r in responses if isinstance(r, Exception)], responses
    codes = [r.status_code for r in responses]
    assert codes == [200] * WAYS, [(r.status_code, r.json()) for r in responses if r.status_code != 200]
    not_applied = [(r.json()["state"], r.json()["drifted_keys"]) for r in responses if r.json()["state"] != "applied"]
    assert not not_applied, not_applied
    stored = Proposal.objects.filter(pk__in=[p["id"] for p in proposals])
    assert sorted(stored.values_list("state", flat=True)) == ["applied"] * WAYS
    applied_numbers = sorted(p.applied_revision.number for p in stored.select_related("applied_revision"))
    assert len(set(applied_numbers)) == WAYS
    revisions = list(ConfigRevision.objects.filter(scope=SCOPE).order_by("number"))
    assert [r.number for r in revisions] == numbers
    # A chain: each revision's parent is the one before it, and the head is the last.
    for previous, revision in pairwise(revisions):
        assert revision.parent_id == previous.pk
    assert ConfigScope.objects.get(scope=SCOPE).current_id == revisions[-1].pk
    assert revisions[-1].document == document
    for proposal in proposals:
        assert [e.event_type for e in kernel_events(proposal["id"])][-1] == "kernel.proposal.applied"


def test_twenty_concurrent_final_approvals_on_a_scope_with_a_revision_all_apply(
    require_postgres: None, wide_policy: Path, proposer: Persona, admin: Persona
) -> None:
    # Revision 1 sets every key to 0, so each proposal's 'from' is a real value a wrong read would miss.
    seed = submit(proposer, scope=SCOPE, changes=[change(SEED_KEY, None, 7), *(change(key, None, 0) for key in KEYS)])
    assert act(admin, seed["id"], "approve").json()["state"] == "applied"  # one approval (risk 0.2)
    seconds = [persona([Role.KERNEL_ADMIN], name=f"second-{i}") for i in range(WAYS)]

    proposals, responses = second_admin_responses(proposer, admin, seconds, frm=0)

    assert all(p["base_revision"] == 1 for p in proposals)
    document = {SEED_KEY: 7, **{key: index + 1 for index, key in enumerate(KEYS)}}
    assert_twenty_applied(proposals, responses, numbers=list(range(1, WAYS + 2)), document=document)


def test_twenty_concurrent_first_ever_applies_on_a_scope_with_no_head_all_apply(
    require_postgres: None, wide_policy: Path, proposer: Persona, admin: Persona
) -> None:
    assert not ConfigScope.objects.filter(scope=SCOPE).exists()
    seconds = [persona([Role.KERNEL_ADMIN], name=f"second-{i}") for i in range(WAYS)]

    proposals, responses = second_admin_responses(proposer, admin, seconds, frm=None)

    assert all(p["base_revision"] is None for p in proposals)
    assert ConfigScope.objects.filter(scope=SCOPE).count() == 1
    assert_twenty_applied(proposals, responses, numbers=list(range(1, WAYS + 1)), document={key: i + 1 for i, key in enumerate(KEYS)})


def test_twenty_concurrent_rollbacks_only_the_head_rolls_back_the_rest_are_409_naming_the_current_revision(
    require_postgres: None, wide_policy: Path, proposer: Persona, admin: Persona
) -> None:
    proposals = [submit(proposer, scope=SCOPE, changes=[change(key, None, i + 1)]) for i, key in enumerate(KEYS)]
    for proposal in proposals:  # applied in sequence: revisions 1..20, the last proposal's is the head
        assert act(admin, proposal["id"], "approve").json()["state"] == "applied"
    admins = [persona([Role.KERNEL_ADMIN], name=f"rollback-{i}") for i in range(WAYS)]

    responses = run_together(
        [lambda p=p, a=a: act(a, p["id"], "rollback", {"reason": "undo under load"}) for p, a in zip(proposals, admins, strict=True)]
    )

    assert not [r for r in responses if isinstance(r, Exception)], responses
    codes = [r.status_code for r in responses]
    assert codes == [409] * (WAYS - 1) + [200], [(r.status_code, r.json()) for r in responses]
    for response in responses[:-1]:
        body = response.json()
        assert body["type"].endswith(":superseded"), body
        assert body["state"] == "applied"
        # Before the head's rollback commits the head is revision 20, after it revision 21.
        assert body["current_revision"] in (WAYS, WAYS + 1), body
    assert responses[-1].json()["state"] == "rolled_back"
    revisions = list(ConfigRevision.objects.filter(scope=SCOPE).order_by("number"))
    assert [r.number for r in revisions] == list(range(1, WAYS + 2))
    assert revisions[-1].kind == "rollback" and revisions[-1].document == revisions[-3].document
    assert ConfigScope.objects.get(scope=SCOPE).current_id == revisions[-1].pk
    stored = dict(Proposal.objects.filter(pk__in=[p["id"] for p in proposals]).values_list("id", "state"))
    assert sorted(stored.values()) == ["applied"] * (WAYS - 1) + ["rolled_back"]


def test_twenty_concurrent_rollbacks_of_the_head_proposal_roll_back_once(
    require_postgres: None, wide_policy: Path, proposer: Persona, admin: Persona
) -> None:
    proposals = [submit(proposer, scope=SCOPE, changes=[change(key, None, i + 1)]) for i, key in enumerate(KEYS[:3])]
    for proposal in proposals:
        act(admin, proposal["id"], "approve")
    head = proposals[-1]
    admins = [persona([Role.KERNEL_ADMIN], name=f"rollback-{i}") for i in range(WAYS)]

    responses = run_together([lambda a=a: act(a, head["id"], "rollback", {"reason": "undo under load"}) for a in admins])

    assert not [r for r in responses if isinstance(r, Exception)], responses
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (WAYS - 1), codes
    assert [r.number for r in ConfigRevision.objects.filter(scope=SCOPE).order_by("number")] == [1, 2, 3, 4]
