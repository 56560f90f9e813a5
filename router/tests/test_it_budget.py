"""Daily budgets per tenant: past the cap only zero-priced targets, else 429 budget_exhausted."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, client_with_roles
from router.models import RuntimeSample, Task

pytestmark = pytest.mark.django_db

POLICY = """
version: 1
budgets: {default_daily_usd: 1.0, tenants: {globex: 100}}
targets:
  - {name: free-local, kind: module, endpoint: "http://127.0.0.1:9"}
  - {name: paid-api, kind: provider, base_url: "http://127.0.0.1:9", model: m, price_per_1k_tokens: 1.0}
rules:
  - name: api-only
    match: {intent: "paid.*"}
    choice: {route: api, candidates: [paid-api]}
default: {route: hybrid, strategy: priority, candidates: [paid-api, free-local]}
"""


def spend(tenant: str, usd: str, when=None) -> None:
    RuntimeSample.objects.create(
        tenant_id=tenant,
        target="paid-api",
        route="api",
        outcome="ok",
        latency_ms=5,
        cost_usd=Decimal(usd),
        created_at=when or timezone.now(),
    )


def test_past_the_cap_only_zero_priced_targets_are_used(policy_file):
    policy_file.write(POLICY)
    admin = client_with_roles([Role.ROUTER_ADMIN])
    assert admin.post("/v1/router/route", {"intent": "chat"}, format="json").json()["target"] == "paid-api"
    spend("acme", "0.6")
    spend("acme", "0.5", when=timezone.now() - timedelta(days=1, hours=1))  # yesterday does not count
    assert admin.post("/v1/router/route", {"intent": "chat"}, format="json").json()["target"] == "paid-api"
    spend("acme", "0.4")  # 1.0 today: the cap is reached
    decision = admin.post("/v1/router/route", {"intent": "chat"}, format="json").json()
    assert decision["target"] == "free-local" and "budget" in decision["reason"]


def test_with_no_zero_priced_target_the_task_is_refused_with_429(policy_file):
    policy_file.write(POLICY)
    admin = client_with_roles([Role.ROUTER_ADMIN])
    spend("acme", "1.5")
    refused = admin.post("/v1/tasks", {"intent": "paid.summary"}, format="json")
    assert refused.status_code == 429
    assert refused.json()["type"].endswith("budget_exhausted")
    assert refused.json()["cap_usd"] == 1.0
    assert not Task.objects.exists()
    # another tenant has its own cap and its own spend
    other = client_with_roles([Role.ROUTER_ADMIN], tenant=OTHER_TENANT)
    assert other.post("/v1/router/route", {"intent": "paid.summary"}, format="json").status_code == 200


def test_the_task_sla_budget_excludes_targets_it_cannot_afford(policy_file):
    policy_file.write(POLICY)
    admin = client_with_roles([Role.ROUTER_ADMIN])
    body = {"intent": "chat", "params": {"input_tokens": 2000}, "sla": {"budget_usd": 0.5}}
    assert admin.post("/v1/router/route", body, format="json").json()["target"] == "free-local"
    body["intent"] = "paid.x"
    assert admin.post("/v1/router/route", body, format="json").status_code == 429
