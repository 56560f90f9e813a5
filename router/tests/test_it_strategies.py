"""Each strategy through the dry-run endpoint (POST /v1/router/route), with runtime samples in the real DB.

Registry modules (including a down module skipped by ``priority``) are covered with really registered
modules in ``test_it_registry_modules.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aion.roles import Role
from aion.testing.factories import client_with_roles
from router.models import RuntimeSample, Task

pytestmark = pytest.mark.django_db

TARGETS = """
targets:
  - {name: fast, kind: module, endpoint: "http://127.0.0.1:9"}
  - {name: slow, kind: module, endpoint: "http://127.0.0.1:9"}
  - {name: cheap-api, kind: provider, base_url: "http://127.0.0.1:9", model: m, price_per_1k_tokens: 0.1}
  - {name: pricey-api, kind: provider, base_url: "http://127.0.0.1:9", model: m, price_per_1k_tokens: 2.0}
"""


def policy(default: str, rules: str = "rules: []", settings_block: str = "settings: {seed: 11}") -> str:
    return f"version: 1\n{settings_block}\n{TARGETS}\n{rules}\ndefault: {default}\n"


@pytest.fixture()
def admin():
    return client_with_roles([Role.ROUTER_ADMIN])


def samples(target: str, latencies: list[float], outcome: str = "ok") -> None:
    now = timezone.now()
    RuntimeSample.objects.bulk_create(
        [
            RuntimeSample(
                target=target, route="local", tenant_id="acme", outcome=outcome, latency_ms=ms, created_at=now - timedelta(seconds=i)
            )
            for i, ms in enumerate(latencies)
        ]
    )


def route(client, **task):
    body = {"intent": "chat.answer", "params": {"prompt": "hi"}, **task}
    response = client.post("/v1/router/route", body, format="json")
    return response


def test_priority_takes_the_first_healthy_and_explains_itself(admin, policy_file):
    policy_file.write(policy("{strategy: priority, candidates: [slow, fast]}"))
    body = route(admin).json()
    assert body["target"] == "slow" and body["strategy"] == "priority" and body["chosen_by"] == "default"
    assert body["fallbacks"] == ["fast"] and body["policy_revision"] == 0  # nothing stored yet: the file, as revision 0
    assert {"route", "target", "strategy", "chosen_by", "reason", "policy_revision", "fallbacks"} <= body.keys()
    samples("slow", [10.0] * 10, outcome="error")  # 100% errors: unhealthy
    assert route(admin).json()["target"] == "fast"


def test_rules_match_intent_globs_tenant_priority_tokens_and_metadata(admin, policy_file):
    rules = """
rules:
  - name: vip
    match: {intent: ["chat.*"], tenant: [acme], priority: [high], input_tokens: {max: 100}, metadata: {team: "ml-*"}}
    choice: {strategy: priority, candidates: [fast]}
"""
    policy_file.write(policy("{strategy: priority, candidates: [slow]}", rules))
    assert route(admin, priority="high", metadata={"team": "ml-research"}).json()["chosen_by"] == "rule:vip"
    assert route(admin, priority="high", metadata={"team": "ops"}).json()["chosen_by"] == "default"
    assert route(admin, priority="low", metadata={"team": "ml-research"}).json()["chosen_by"] == "default"
    big = {"prompt": "x" * 1000}
    assert route(admin, priority="high", metadata={"team": "ml-a"}, params=big).json()["chosen_by"] == "default"


def test_weighted_is_seeded_deterministic_and_follows_the_weights(admin, policy_file):
    policy_file.write(policy("{strategy: weighted, candidates: [{target: fast, weight: 9}, {target: slow, weight: 1}]}"))
    picks = [route(admin, seed=f"s{i}").json()["target"] for i in range(60)]
    assert picks == [route(admin, seed=f"s{i}").json()["target"] for i in range(60)]  # same seed, same pick
    assert picks.count("fast") > picks.count("slow") > 0


def test_latency_picks_the_lowest_recent_p95(admin, policy_file):
    policy_file.write(policy("{strategy: latency, candidates: [slow, fast]}"))
    samples("slow", [300.0] * 20)
    samples("fast", [20.0] * 19 + [900.0])  # p95 of 20 samples is the 19th: 20 ms
    body = route(admin).json()
    assert body["target"] == "fast" and body["fallbacks"] == ["slow"]
    samples("fast", [5000.0] * 20)  # fast turns slow: the rolling window sees it
    assert route(admin).json()["target"] == "slow"


def test_cost_picks_the_cheapest_that_meets_the_p95_sla(admin, policy_file):
    policy_file.write(policy("{route: api, strategy: cost, candidates: [pricey-api, cheap-api]}"))
    samples("cheap-api", [800.0] * 10)
    samples("pricey-api", [100.0] * 10)
    assert route(admin).json()["target"] == "cheap-api"  # no p95 SLA: cheapest
    assert route(admin, sla={"p95_ms": 200}).json()["target"] == "pricey-api"
    assert route(admin, sla={"p95_ms": 1000}).json()["target"] == "cheap-api"


def test_least_busy_picks_the_fewest_in_flight(admin, policy_file):
    policy_file.write(policy("{strategy: least-busy, candidates: [fast, slow]}"))
    Task.objects.bulk_create([Task(tenant_id="acme", intent="x", status="RUNNING", target="fast") for _ in range(3)])
    Task.objects.create(tenant_id="acme", intent="x", status="RUNNING", target="slow")
    assert route(admin).json()["target"] == "slow"


def test_preferred_engine_narrows_the_route(admin, policy_file):
    policy_file.write(policy("{route: hybrid, strategy: priority, candidates: [fast, cheap-api]}"))
    assert route(admin, preferred_engine="api").json()["target"] == "cheap-api"
    assert route(admin, preferred_engine="local").json() | {} == route(admin, preferred_engine="local").json()
    assert route(admin, preferred_engine="local").json()["route"] == "local"


def test_no_eligible_target_and_bad_input_are_problems(admin, policy_file):
    policy_file.write(policy("{route: api, strategy: priority, candidates: [cheap-api]}"))
    refused = route(admin, sla={"privacy": "local-only"})
    assert refused.status_code == 422
    bad = admin.post("/v1/router/route", {"intent": "", "priority": "urgent", "sla": {"privacy": "nope", "x": 1}}, format="json")
    assert bad.status_code == 400
    assert {"intent", "priority", "sla.privacy", "sla.x"} <= set(bad.json()["errors"])


def test_the_dry_run_is_deterministic_for_the_same_policy_metrics_and_task(admin, policy_file):
    policy_file.write(policy("{strategy: weighted, candidates: [fast, slow, cheap-api]}"))
    first = route(admin, params={"prompt": "same"}).json()
    assert all(route(admin, params={"prompt": "same"}).json() == first for _ in range(5))


PRIVATE_RULE = """
  - name: private
    match: {privacy: [local-only]}
    choice: {route: local, strategy: priority, candidates: [slow]}
"""
CHAT_RULE = """
  - name: all-chat
    match: {intent: "chat.*"}
    choice: {strategy: priority, candidates: [fast]}
"""


def test_rules_are_ordered_the_first_match_wins_and_privacy_can_be_matched(admin, policy_file):
    policy_file.write(policy("{strategy: priority, candidates: [cheap-api]}", "rules:" + PRIVATE_RULE + CHAT_RULE))
    assert route(admin, sla={"privacy": "local-only"}).json()["chosen_by"] == "rule:private"
    assert route(admin, sla={"privacy": "allow-api"}).json()["chosen_by"] == "rule:all-chat"
    # the same two rules the other way round: the broader rule now shadows the private one
    policy_file.write(policy("{strategy: priority, candidates: [cheap-api]}", "rules:" + CHAT_RULE + PRIVATE_RULE))
    assert admin.post("/v1/router/policy/reload").status_code == 201
    decision = route(admin, sla={"privacy": "local-only"}).json()
    assert (decision["chosen_by"], decision["target"], decision["policy_revision"]) == ("rule:all-chat", "fast", 1)
