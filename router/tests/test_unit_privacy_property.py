"""Privacy is absolute: a local-only task never reaches an api target, whatever the policy says.

A hypothesis property over generated policies (targets, rules, routes, strategies,
fallbacks, budgets), runtime views (samples, in-flight counts, spend, registry modules
and their health) and tasks. The policy goes through the real YAML loader and schema.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aion.problems import domain_status
from router.engine import RoutingRefused, RuntimeView, TargetStats, TaskSpec, decide
from router.policy import Target, parse_policy

NAMES = [f"t{i}" for i in range(8)]
STRATEGIES = ["priority", "weighted", "latency", "cost", "least-busy"]
ROUTES = ["local", "api", "hybrid"]
INTENTS = ["chat.answer", "chat.summarize", "embed.text", "code.review"]


@st.composite
def policy_documents(draw):
    """A policy document (the YAML's mapping) the schema accepts; ``policies`` parses it."""
    count = draw(st.integers(min_value=1, max_value=len(NAMES)))
    targets = []
    for name in NAMES[:count]:
        kind = draw(st.sampled_from(["module", "provider"]))
        if kind == "module":
            target = {"name": name, "kind": "module", "endpoint": f"http://{name}.local:8080"}
        else:
            target = {
                "name": name,
                "kind": "provider",
                "base_url": f"https://{name}.example/v1",
                "model": "m",
                "price_per_1k_tokens": draw(st.sampled_from([0, 0.001, 0.5, 3.0])),
            }
            if draw(st.booleans()):
                target["route"] = draw(st.sampled_from(["local", "api"]))  # a self-hosted provider may be local
        targets.append(target)
    names = [t["name"] for t in targets] + ["module:*", "module:m1"]

    def choice():
        out = {
            "route": draw(st.sampled_from(ROUTES)),
            "strategy": draw(st.sampled_from(STRATEGIES)),
            "candidates": [
                {"target": n, "weight": draw(st.sampled_from([0.5, 1, 5]))}
                for n in draw(st.lists(st.sampled_from(names), min_size=1, max_size=5))
            ],
            "fallbacks": draw(st.lists(st.sampled_from(names), max_size=4)),
        }
        return out

    rules = []
    for index in range(draw(st.integers(min_value=0, max_value=4))):
        match = {}
        if draw(st.booleans()):
            match["intent"] = draw(st.sampled_from(["chat.*", "embed.*", "*"]))
        if draw(st.booleans()):
            match["privacy"] = draw(st.lists(st.sampled_from(["local-only", "allow-api", "hybrid"]), min_size=1, max_size=3))
        rules.append({"name": f"r{index}", "match": match, "choice": choice()})
    document = {
        "version": 1,
        "settings": {"seed": draw(st.integers(0, 1000)), "min_samples": 1},
        "budgets": {"default_daily_usd": draw(st.sampled_from([None, 0, 1.0, 100.0]))},
        "targets": targets,
        "rules": rules,
        "default": choice(),
    }
    return document


@st.composite
def policies(draw):
    return parse_policy(yaml.safe_dump(draw(policy_documents())))


@st.composite
def views(draw):
    stats = {
        name: TargetStats(p50_ms=p, p95_ms=p * 2, error_rate=draw(st.sampled_from([0.0, 0.2, 1.0])), samples=draw(st.integers(0, 50)))
        for name in NAMES
        if draw(st.booleans())
        for p in [draw(st.floats(min_value=1, max_value=5000))]
    }
    registry = [
        Target(
            name=f"module:m{i}",
            kind="module",
            route="local",
            endpoint=f"http://m{i}:80",
            intents=tuple(draw(st.lists(st.sampled_from(["chat.*", "embed.*"]), max_size=2))),
            health=draw(st.sampled_from(["up", "down", "degraded", "unknown"])),
            from_registry=True,
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return RuntimeView(
        stats=stats,
        in_flight={n: draw(st.integers(0, 5)) for n in NAMES},
        spent_today_usd=draw(st.sampled_from([0.0, 0.5, 50.0, 1000.0])),
        registry=registry,
    )


@st.composite
def tasks(draw, privacy=None):
    return TaskSpec(
        intent=draw(st.sampled_from(INTENTS)),
        tenant_id="acme",
        params={"input_tokens": draw(st.integers(0, 20000))},
        preferred_engine=draw(st.sampled_from(["auto", "local", "api", "hybrid"])),
        priority=draw(st.sampled_from(["low", "normal", "high"])),
        privacy=privacy or draw(st.sampled_from(["local-only", "allow-api", "hybrid"])),
        budget_usd=draw(st.sampled_from([None, 0.0, 0.01, 10.0])),
        p95_ms=draw(st.sampled_from([None, 50.0, 1000.0])),
        key=draw(st.text(min_size=0, max_size=8)),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(), view=views(), spec=tasks(privacy="local-only"))
def test_local_only_never_reaches_an_api_target_even_through_fallbacks_or_hybrid(policy, view, spec):
    try:
        decision = decide(policy, spec, view)
    except RoutingRefused:
        return  # refusing is always allowed
    assert decision.route == "local"
    assert all(t.route == "local" for t in decision.targets), decision
    every_target = {**policy.targets, **{t.name: t for t in view.registry}}
    assert all(every_target[name].route == "local" for name in (decision.target, *decision.fallbacks))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(), view=views(), spec=tasks(privacy="hybrid"))
def test_hybrid_privacy_tries_every_local_target_before_any_api_one(policy, view, spec):
    try:
        decision = decide(policy, spec, view)
    except RoutingRefused:
        return
    routes = [t.route for t in decision.targets]
    assert routes == sorted(routes, key=lambda r: r != "local")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(), view=views(), spec=tasks())
def test_decisions_are_deterministic_and_never_call_down_modules(policy, view, spec):
    try:
        first = decide(policy, spec, view)
    except RoutingRefused as exc:
        assert domain_status(exc) in (422, 429)
        return
    assert decide(policy, spec, view) == first
    assert all(t.health != "down" for t in first.targets)
    assert len({t.name for t in first.targets}) == len(first.targets)
