"""Routing decisions: a pure function of (policy, task, runtime view, seed).

``decide()`` finds the first matching rule, narrows its candidates by route,
privacy, health and budget, ranks them with the rule's strategy and returns the
chosen target plus the fallback order. It never touches the database, so it is
deterministic for the same inputs and cheap enough to benchmark on its own.

Privacy is enforced here, once, on the complete list (chosen + fallbacks): with
``sla.privacy == "local-only"`` no target whose route is ``api`` can appear.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aion.errors import DomainError, RateLimited, Rejected
from router.choices import Privacy, Route, Strategy
from router.policy import Choice, Policy, Target


class RoutingRefused(DomainError):
    """No target may take the task; each reason is a subclass of the domain kind the caller sees."""


class PrivacyConflict(RoutingRefused, Rejected):
    code = "privacy-conflict"


class NoEligibleTarget(RoutingRefused, Rejected):
    code = "no-eligible-target"


class BudgetExhausted(RoutingRefused, RateLimited):
    code = "budget_exhausted"  # the task's error_code since the first release: kept as is


@dataclass(frozen=True)
class TaskSpec:
    intent: str
    tenant_id: str
    params: dict = field(default_factory=dict)
    preferred_engine: str = "auto"
    priority: str = "normal"
    privacy: str = Privacy.ALLOW_API
    budget_usd: float | None = None
    p95_ms: float | None = None
    metadata: dict = field(default_factory=dict)
    key: str = ""  # the task id (or a dry run's seed): what the weighted strategy hashes

    @cached_property
    def input_tokens(self) -> int:
        explicit = self.params.get("input_tokens") if isinstance(self.params, dict) else None
        if isinstance(explicit, int) and explicit >= 0:
            return explicit
        # ~4 characters per token: a cheap, deterministic estimate for matching and budgets.
        return len(json.dumps(self.params, sort_keys=True, default=str)) // 4


@dataclass(frozen=True)
class TargetStats:
    p50_ms: float | None = None
    p95_ms: float | None = None
    error_rate: float = 0.0
    samples: int = 0


@dataclass
class RuntimeView:
    """What the strategies may look at, gathered by router.stats (or built by tests and benches)."""

    stats: dict[str, TargetStats] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    spent_today_usd: float = 0.0
    registry: list[Target] = field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    route: str
    target: str
    strategy: str
    chosen_by: str
    reason: str
    policy_revision: int
    fallbacks: tuple[str, ...]
    targets: tuple[Target, ...]  # chosen first, then fallbacks, in call order
    timeouts_ms: tuple[int, ...]  # per target in ``targets``: the choice's, else the target's, else the policy's

    def timeout_s(self, index: int) -> float:
        return self.timeouts_ms[index] / 1000.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "target": self.target,
            "strategy": self.strategy,
            "chosen_by": self.chosen_by,
            "reason": self.reason,
            "policy_revision": self.policy_revision,
            "fallbacks": list(self.fallbacks),
        }


ROUTES_FOR: dict[str, set[str]] = {Route.LOCAL: {"local"}, Route.API: {"api"}, Route.HYBRID: {"local", "api"}}


def _resolve(name: str, policy: Policy, view: RuntimeView, intent: str) -> list[Target]:
    if name.startswith("module:"):
        if not policy.registry_modules:
            return []
        wanted = name.split(":", 1)[1]
        found = []
        for target in view.registry:
            if wanted == "*":
                if not target.intents or any(fnmatch.fnmatchcase(intent, g) for g in target.intents):
                    found.append(target)
            elif target.name == f"module:{wanted}":
                found.append(target)
        return found
    declared = policy.targets.get(name)
    return [declared] if declared else []


def estimated_cost(target: Target, spec: TaskSpec) -> float:
    return target.price_per_1k_tokens * spec.input_tokens / 1000.0


def select_rule(policy: Policy, spec: TaskSpec) -> tuple[str, Choice]:
    """The first rule whose match fits, else the default (through the policy's memoised index)."""
    rule = policy.rule_index.first(spec.intent, spec.tenant_id, spec.privacy, spec.priority, lambda: spec.input_tokens, spec.metadata)
    if rule is None:
        return "default", policy.default
    return f"rule:{rule.name}", rule.choice


def _healthy(target: Target, policy: Policy, view: RuntimeView) -> bool:
    stats = view.stats.get(target.name)
    if stats and stats.samples >= policy.min_samples and stats.error_rate >= policy.unhealthy_error_rate:
        return False
    return target.health != "down"


def _rank(
    strategy: str, targets: list[Target], weights: dict[str, float], spec: TaskSpec, policy: Policy, view: RuntimeView
) -> list[Target]:
    indexed = list(enumerate(targets))
    if strategy == Strategy.WEIGHTED and targets:
        seed = hashlib.sha256(f"{policy.seed}:{spec.key}".encode()).hexdigest()
        rng = random.Random(seed)
        pool = list(targets)
        ordered: list[Target] = []
        while pool:  # weighted sampling without replacement: the order of fallbacks is seeded too
            # Drawing an index consumes the generator exactly as drawing the target did (same picks).
            pick = rng.choices(range(len(pool)), weights=[weights.get(t.name, 1.0) for t in pool])[0]
            ordered.append(pool.pop(pick))
        return ordered
    if strategy == Strategy.LATENCY:
        return [t for _, t in sorted(indexed, key=lambda it: (*_p95_key(it[1], view), it[0]))]
    if strategy == Strategy.COST:
        limit = spec.p95_ms

        def meets(t: Target) -> bool:
            p95 = view.stats.get(t.name, TargetStats()).p95_ms
            return limit is None or p95 is None or p95 <= limit

        good = sorted((it for it in indexed if meets(it[1])), key=lambda it: (it[1].price_per_1k_tokens, it[0]))
        slow = sorted((it for it in indexed if not meets(it[1])), key=lambda it: (*_p95_key(it[1], view), it[0]))
        return [t for _, t in good + slow]
    if strategy == Strategy.LEAST_BUSY:
        return [t for _, t in sorted(indexed, key=lambda it: (view.in_flight.get(it[1].name, 0), it[0]))]
    return list(targets)  # priority: the listed order


def _p95_key(target: Target, view: RuntimeView) -> tuple[int, float]:
    p95 = view.stats.get(target.name, TargetStats()).p95_ms
    return (1, 0.0) if p95 is None else (0, p95)  # targets without samples go after measured ones


_STRATEGY_NOTES: dict[str, str] = {
    Strategy.PRIORITY: "first healthy in listed order",
    Strategy.LATENCY: "lowest rolling p95",
    Strategy.LEAST_BUSY: "fewest in-flight tasks",
}


def _strategy_note(strategy: str, policy: Policy, spec: TaskSpec) -> str:
    if strategy == Strategy.WEIGHTED:
        return f"seeded weighted pick (seed {policy.seed})"
    if strategy == Strategy.COST:
        return "cheapest meeting sla.p95_ms" if spec.p95_ms is not None else "cheapest"
    return _STRATEGY_NOTES.get(strategy, strategy)


def decide(policy: Policy, spec: TaskSpec, view: RuntimeView) -> Decision:
    chosen_by, choice = select_rule(policy, spec)
    route = choice.route
    notes: list[str] = []
    if spec.preferred_engine and spec.preferred_engine != "auto":
        route = spec.preferred_engine
        notes.append(f"preferred_engine={route}")
    allowed = set(ROUTES_FOR.get(route, {"local", "api"}))
    if spec.privacy == Privacy.LOCAL_ONLY:
        allowed &= {"local"}
        notes.append("privacy local-only: api targets excluded")
        if not allowed:
            raise PrivacyConflict(f"route {route!r} cannot serve a local-only task", chosen_by=chosen_by)

    def eligible(names: list[tuple[str, float]]) -> tuple[list[Target], dict[str, float]]:
        out: list[Target] = []
        weights: dict[str, float] = {}
        for name, weight in names:
            for target in _resolve(name, policy, view, spec.intent):
                if target.route in allowed and target.name not in weights:
                    out.append(target)
                    weights[target.name] = weight
        return out, weights

    candidates, weights = eligible([(c.target, c.weight) for c in choice.candidates])
    explicit_fallbacks, _ = eligible([(name, 1.0) for name in choice.fallbacks])
    pool = candidates + [t for t in explicit_fallbacks if t.name not in weights]

    # Down modules are never called; over-budget targets are dropped before ranking.
    pool = [t for t in pool if t.health != "down"]
    cap = policy.daily_budget(spec.tenant_id)
    if cap is not None and view.spent_today_usd >= cap:
        before = len(pool)
        pool = [t for t in pool if t.price_per_1k_tokens == 0]
        if not pool:
            raise BudgetExhausted(
                f"tenant {spec.tenant_id!r} spent {view.spent_today_usd:.4f} USD today (cap {cap:.4f}); no zero-priced target is eligible",
                spent_usd=round(view.spent_today_usd, 6),
                cap_usd=cap,
            )
        if len(pool) < before:
            notes.append("daily budget exhausted: only zero-priced targets")
    if spec.budget_usd is not None:
        affordable = [t for t in pool if estimated_cost(t, spec) <= spec.budget_usd]
        if pool and not affordable:
            raise BudgetExhausted(f"every eligible target costs more than sla.budget_usd={spec.budget_usd}")
        pool = affordable
    if not pool:
        raise NoEligibleTarget(f"no target of {chosen_by} can take intent {spec.intent!r} on route {route!r}")

    primary = [t for t in pool if t.name in weights]
    ranked = _rank(choice.strategy, primary, weights, spec, policy, view)
    # Unhealthy (high error rate) targets stay as last resorts; privacy "hybrid" tries local first.
    healthy = [_healthy(t, policy, view) for t in ranked]
    ranked = [t for t, ok in zip(ranked, healthy, strict=True) if ok] + [t for t, ok in zip(ranked, healthy, strict=True) if not ok]
    if not ranked:
        ranked = [t for t in pool if t.name not in weights]
    chosen = ranked[0]
    # Names are unique in the pool (eligible() de-duplicates), so membership is checked by name:
    # comparing frozen Targets field by field was a fifth of a decision's time.
    pool_names = {t.name for t in pool}
    order: list[Target] = [chosen]
    ordered_names = {chosen.name}
    for target in explicit_fallbacks:  # the policy's fallback order first
        if target.name in pool_names and target.name not in ordered_names:
            order.append(target)
            ordered_names.add(target.name)
    for target in ranked[1:]:
        if target.name not in ordered_names:
            order.append(target)
            ordered_names.add(target.name)
    if spec.privacy == Privacy.HYBRID:
        order = [t for t in order if t.route == "local"] + [t for t in order if t.route != "local"]
        chosen = order[0]
    # Defence in depth: the privacy invariant, checked on the final call order.
    if spec.privacy == Privacy.LOCAL_ONLY:
        order = [t for t in order if t.route == "local"]
    strategy_note = _strategy_note(choice.strategy, policy, spec)
    reason = "; ".join([f"{chosen_by} matched", strategy_note, *notes])
    return Decision(
        route=chosen.route,
        target=chosen.name,
        strategy=choice.strategy,
        chosen_by=chosen_by,
        reason=reason,
        policy_revision=policy.revision,
        fallbacks=tuple(t.name for t in order[1:]),
        targets=tuple(order),
        timeouts_ms=tuple(choice.timeout_ms or t.timeout_ms or policy.timeout_ms for t in order),
    )
