"""The single ``kernel.proposals`` JSON Schema (docs/events/kernel.proposals.json) is strict.

Every kernel test checks its events with ``aion.topics.validate_event``; these cases prove that check
would catch a malformed event (so the other tests' schema checks are not vacuous).
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
from django.conf import settings

from aion.testing.kernel_proposals import act, assert_valid_event, kernel_events, submit
from aion.topics import KERNEL_PROPOSALS, TOPICS, event_schema, validate_event

pytestmark = pytest.mark.django_db


def test_there_is_one_kernel_schema_and_it_carries_the_topic_registry_entry():
    assert not (Path(settings.BASE_DIR) / "kernel" / "schemas").exists()
    schema = event_schema(KERNEL_PROPOSALS)
    assert schema["x-kafka"]["topic"] == KERNEL_PROPOSALS
    assert schema["x-kafka"]["partitions"] == TOPICS[KERNEL_PROPOSALS].partitions


def _break(envelope, path, value):
    broken = copy.deepcopy(envelope)
    target = broken
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("type",), "kernel.proposal.teleported"),
        (("tenant_id",), ""),
        (("extra",), 1),
        (("data", "proposal"), KeyError),
        (("data", "rbac"), KeyError),
        (("data", "state"), "APPLIED"),
        (("data", "action"), "delete"),
        (("data", "proposal", "content_hash"), "not-a-hash"),
        (("data", "proposal", "risk_score"), 1.5),
        (("data", "proposal", "changes"), [{"key": "vm.swappiness", "from": None, "to": 1, "extra": 1}]),
        (("data", "proposal", "changes"), [{"key": "vm.swappiness", "from": None, "to": {"nested": 1}}]),
        (("data", "proposal", "approvals"), [{"approver": "key:x"}]),
        (("data", "rbac"), {"actor": "key:x", "actor_kind": "api_key", "roles": [], "required_role": "kernel.admin", "allowed": False}),
    ],
)
def test_a_malformed_event_fails_the_schema(proposer, admin, path, value):
    proposal = submit(proposer)
    assert act(admin, proposal["id"], "approve").json()["state"] == "applied"
    envelope = assert_valid_event(kernel_events(proposal["id"])[-1])
    with pytest.raises(jsonschema.ValidationError):
        validate_event(KERNEL_PROPOSALS, _break(envelope, path, value))
