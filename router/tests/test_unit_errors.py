"""The router's refusals are aion.errors kinds: each keeps the API status and problem type it always had."""

from __future__ import annotations

import pytest

from aion.errors import InvalidInput
from aion.problems import exception_handler
from router.engine import BudgetExhausted, NoEligibleTarget, PrivacyConflict, RoutingRefused
from router.policy import PolicyInvalid


def test_an_invalid_policy_is_invalid_input_with_its_errors():
    error = PolicyInvalid({"rules.0.match": ["is required"]})
    assert isinstance(error, InvalidInput)
    assert str(error) == "rules.0.match: is required"  # logs, /readyz and commands list the errors
    body = exception_handler(error, {}).data
    assert body["status"] == 400 and body["type"] == "urn:aion:problem:policy-invalid"
    assert body["detail"] == "the router policy is invalid; the active policy is unchanged"
    assert body["errors"] == {"rules.0.match": ["is required"]}


@pytest.mark.parametrize(
    ("refusal", "status", "slug"),
    [(PrivacyConflict, 422, "privacy-conflict"), (NoEligibleTarget, 422, "no-eligible-target"), (BudgetExhausted, 429, "budget_exhausted")],
)
def test_each_routing_refusal_keeps_its_status_and_type(refusal, status, slug):
    error = refusal("no target", chosen_by="default")
    assert isinstance(error, RoutingRefused)
    response = exception_handler(error, {})
    assert (response.status_code, response.data["type"], response.data["chosen_by"]) == (status, f"urn:aion:problem:{slug}", "default")
    assert "Retry-After" not in response  # a budget is not a rate limit that ends in seconds
