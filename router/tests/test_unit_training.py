"""Training and its guard (router.training), pure: samples made here, no database.

- one target faster and as reliable: the candidate shifts weight (and priority order) to it, and the guard promotes;
- the held-out samples show the favoured target failing: the guard refuses ("no-change"), with the comparison;
- under hypothesis-generated policies and samples, no trained policy lets a local-only task reach an api
  target, and training never touches targets, routes, matches, candidate sets or fallbacks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.engine import RoutingRefused, decide
from router.policy import parse_policy
from router.tests.test_unit_privacy_property import INTENTS, NAMES, policy_documents, tasks, views
from router.training import GuardBounds, SampleRow, run_training, train

POLICY = """
version: 1
settings: {seed: 7, min_samples: 5, unhealthy_error_rate: 0.5}
targets:
  - {name: slow-a, kind: module, endpoint: "http://slow-a:8080"}
  - {name: fast-b, kind: module, endpoint: "http://fast-b:8080"}
rules:
  - name: chat-priority
    match: {intent: "chat.*"}
    choice: {route: local, strategy: priority, candidates: [slow-a, fast-b]}
default: {route: local, strategy: weighted, candidates: [{target: slow-a, weight: 1}, {target: fast-b, weight: 1}]}
"""

START = datetime(2026, 11, 1, tzinfo=UTC)


def sample(index: int, target: str, latency: float, ok: bool = True, rule: str = "default") -> SampleRow:
    return SampleRow(
        target=target,
        outcome="ok" if ok else "error",
        latency_ms=latency,
        cost_usd=0.0,
        rule=rule,
        created_at=(START + timedelta(minutes=index)).isoformat(),
    )


def interleaved(count: int, *, rule: str = "default", error_every: int = 20) -> list[SampleRow]:
    """COUNT samples per target over time, both failing every ERROR_EVERY-th call; fast-b is 4x faster."""
    rows = []
    for i in range(count):
        ok = i % error_every != 0
        rows.append(sample(2 * i, "slow-a", 400 + i % 7, ok, rule))
        rows.append(sample(2 * i + 1, "fast-b", 100 + i % 5, ok, rule))
    return rows


def weights(text: str, key: str = "default") -> dict[str, float]:
    policy = parse_policy(text)
    choice = policy.default if key == "default" else next(r.choice for r in policy.rules if f"rule:{r.name}" == key)
    return {c.target: c.weight for c in choice.candidates}


def test_the_faster_equally_reliable_target_gets_more_weight_and_the_guard_promotes():
    result = run_training(POLICY, interleaved(100))
    assert result.decision == "promote", result.report
    assert result.candidate is not None
    trained = weights(result.candidate)
    assert trained["fast-b"] > trained["slow-a"]
    assert abs(sum(trained.values()) - 2.0) < 0.01  # the choice's total weight is kept
    evaluation = result.report["evaluation"]
    assert evaluation["candidate"]["error_rate"] <= evaluation["current"]["error_rate"]
    assert evaluation["candidate"]["p95_ms"] < evaluation["current"]["p95_ms"]
    assert result.report["samples"] == {"total": 200, "train": 140, "held_out": 60, "evaluated": 60}
    assert result.report["targets"]["fast-b"]["p95_ms"] < result.report["targets"]["slow-a"]["p95_ms"]


def test_priority_choices_put_the_faster_equally_reliable_target_first():
    result = run_training(POLICY, interleaved(100, rule="rule:chat-priority"))
    assert result.candidate is not None
    rule = next(r for r in parse_policy(result.candidate).rules if r.name == "chat-priority")
    assert [c.target for c in rule.choice.candidates] == ["fast-b", "slow-a"]
    assert any("rule:chat-priority: order slow-a > fast-b → fast-b > slow-a" == c for c in result.report["changes"])
    assert result.decision == "promote", result.report


def test_the_guard_refuses_a_candidate_that_raises_the_error_rate_on_the_held_out_samples():
    # The older 70% says fast-b is as reliable; the newest 30% (held out) shows it failing half the time.
    rows = interleaved(70, error_every=10**9)
    for i in range(70, 100):
        rows.append(sample(2 * i, "slow-a", 400))
        rows.append(sample(2 * i + 1, "fast-b", 100, ok=i % 2 == 0))
    result = run_training(POLICY, rows)
    assert result.decision == "no-change"
    assert "error rate would rise" in result.reason
    evaluation = result.report["evaluation"]
    assert evaluation["candidate"]["error_rate"] > evaluation["current"]["error_rate"]
    assert result.candidate is not None and weights(result.candidate)["fast-b"] > 1  # the refused candidate, for the record


def test_too_few_samples_or_nothing_to_learn_is_no_change():
    assert run_training(POLICY, interleaved(3)).decision == "no-change"
    assert run_training(POLICY, []).reason == "training found nothing to change"
    strict = GuardBounds(min_holdout_samples=10_000)
    assert "too few held-out samples" in run_training(POLICY, interleaved(100), bounds=strict).reason


def test_unhealthy_threshold_follows_the_fleet_error_rate():
    rows = interleaved(100, error_every=10)  # 10% errors on both
    candidate, changes = train(yaml.safe_load(POLICY), rows)
    assert candidate["settings"]["unhealthy_error_rate"] == 0.3  # 2 x 0.1 + 0.1
    assert candidate["settings"]["min_samples"] == 5
    assert "settings.unhealthy_error_rate 0.5→0.3" in changes


def _frozen_shape(document: dict) -> list:
    """Everything training must leave as it is: targets, matches, routes, strategies, candidate sets, fallbacks."""

    def choice(c: dict) -> tuple:
        names = sorted(x if isinstance(x, str) else x["target"] for x in c["candidates"])
        return (c.get("route"), c.get("strategy"), names, list(c.get("fallbacks", [])))

    return [
        document["targets"],
        [(r["name"], r.get("match"), choice(r["choice"])) for r in document.get("rules") or []],
        choice(document["default"]),
        document.get("budgets"),
    ]


@st.composite
def sample_sets(draw, document: dict):
    keys = [f"rule:{r['name']}" for r in document.get("rules") or []] + ["default", ""]
    names = [*NAMES, "module:m0", "module:m1"]
    count = draw(st.integers(0, 80))
    return [
        SampleRow(
            target=draw(st.sampled_from(names)),
            outcome=draw(st.sampled_from(["ok", "ok", "ok", "error", "timeout"])),
            latency_ms=draw(st.floats(min_value=0, max_value=10_000)),
            cost_usd=draw(st.sampled_from([0.0, 0.001, 0.3])),
            rule=draw(st.sampled_from(keys)),
            created_at=(START + timedelta(seconds=draw(st.integers(0, 10**6)))).isoformat(),
        )
        for _ in range(count)
    ]


@st.composite
def trained_policies(draw):
    document = draw(policy_documents())
    rows = draw(sample_sets(document))
    result = run_training(yaml.safe_dump(document), rows, bounds=GuardBounds(min_holdout_samples=1))
    text = result.candidate or yaml.safe_dump(document)
    return document, yaml.safe_load(text), parse_policy(text)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(trained=trained_policies(), view=views(), spec=tasks(privacy="local-only"))
def test_every_trained_policy_keeps_local_only_tasks_local(trained, view, spec):
    document, candidate, policy = trained
    assert _frozen_shape(candidate) == _frozen_shape(document)
    assert spec.intent in INTENTS
    try:
        decision = decide(policy, spec, view)
    except RoutingRefused:
        return
    every_target = {**policy.targets, **{t.name: t for t in view.registry}}
    assert all(every_target[name].route == "local" for name in (decision.target, *decision.fallbacks))
    assert all(t.route == "local" for t in decision.targets)
