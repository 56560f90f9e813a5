"""Learning routing from runtime samples: a candidate policy and the offline guard that may refuse it.

Pure: no database, no clock. ``run_training(policy_text, rows)`` splits the samples by time (the newest
``holdout_fraction`` is held out), trains a candidate on the older part and replays the held-out part
against the current policy and the candidate. The candidate is promoted only when it is no worse on error
rate and within ``GuardBounds`` on p95 latency and cost per call; otherwise the decision is "no-change",
with the comparison in the report either way.

What training may change, and nothing else (so no trained policy can cross a privacy rule: targets,
routes, matches, candidate sets and fallbacks are copied as they are, and ``router.engine.decide`` enforces
privacy on every policy):

- the weights of ``weighted`` choices: each measured candidate gets ``success_rate² * (fastest p95 / its
  p95)`` of the choice's current total weight, at least ``MIN_SHARE`` of it (no target is starved of the
  traffic that would show it recovered);
- the candidate order of ``priority`` choices: measured candidates sorted by error rate (to 0.01), then
  p95, in the slots measured candidates held (unmeasured ones keep their place);
- ``settings.unhealthy_error_rate`` (twice the fleet's median error rate plus 0.1, within [0.2, 0.8]) and
  ``settings.min_samples`` (enough that one error cannot cross the threshold, at least 5).

A rule is trained on the samples of the tasks it routed (``SampleRow.rule`` is the task's ``chosen_by``);
a target with fewer than the policy's ``min_samples`` there is judged on all its samples, and with fewer
than that everywhere it is left as it is.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from router.policy import Policy, parse_policy
from router.stats import percentile

MIN_SHARE = 0.05  # of a weighted choice's total weight, for every measured candidate
MIN_WEIGHT_CHANGE = 0.01  # relative: smaller moves are noise and are not written


@dataclass(frozen=True)
class SampleRow:
    """One target attempt as training sees it (``router.samples.sample_rows`` builds these)."""

    target: str
    outcome: str  # ok | error | timeout
    latency_ms: float
    cost_usd: float = 0.0
    rule: str = ""  # the task's chosen_by: "rule:<name>" or "default"; "" for a sample without a task
    created_at: str = ""  # ISO 8601; orders the hold-out split


@dataclass(frozen=True)
class GuardBounds:
    """How much worse than the current policy a candidate may be on the held-out samples and still win."""

    max_error_rate_increase: float = 0.0  # absolute: "no worse"
    max_p95_increase: float = 0.10  # relative to the current policy's expected p95
    max_cost_increase: float = 0.10  # relative to the current policy's expected cost per call
    holdout_fraction: float = 0.3  # the newest samples, replayed and never trained on
    min_holdout_samples: int = 20  # fewer evaluable held-out samples: "no-change"


@dataclass(frozen=True)
class Figures:
    samples: int
    success_rate: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    cost_per_call_usd: float


@dataclass(frozen=True)
class Expected:
    """A policy's expected figures on the held-out samples (importance-weighted replay)."""

    samples: int
    error_rate: float
    p95_ms: float | None
    cost_per_call_usd: float


@dataclass
class TrainingResult:
    decision: str  # promote | no-change
    reason: str
    candidate: str | None  # the candidate policy text (also when refused, for the record), None if none was built
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return self.decision == "promote"


def figures(rows: list[SampleRow]) -> Figures:
    latencies = [r.latency_ms for r in rows]
    errors = sum(1 for r in rows if r.outcome != "ok")
    n = len(rows)
    return Figures(
        samples=n,
        success_rate=round(1 - errors / n, 6) if n else 0.0,
        error_rate=round(errors / n, 6) if n else 0.0,
        p50_ms=percentile(latencies, 0.5),
        p95_ms=percentile(latencies, 0.95),
        cost_per_call_usd=round(sum(r.cost_usd for r in rows) / n, 9) if n else 0.0,
    )


def split(rows: list[SampleRow], fraction: float) -> tuple[list[SampleRow], list[SampleRow]]:
    """(train, held out): the newest FRACTION of ROWS by time is held out."""
    ordered = sorted(rows, key=lambda r: r.created_at)
    held = math.ceil(len(ordered) * fraction) if ordered else 0
    return ordered[: len(ordered) - held], ordered[len(ordered) - held :]


def _by_target(rows: list[SampleRow]) -> dict[str, list[SampleRow]]:
    out: dict[str, list[SampleRow]] = defaultdict(list)
    for row in rows:
        out[row.target].append(row)
    return out


def _by_rule(rows: list[SampleRow]) -> dict[str, dict[str, list[SampleRow]]]:
    out: dict[str, dict[str, list[SampleRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.rule:
            out[row.rule][row.target].append(row)
    return out


def _choices(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(chosen_by key, the choice mapping) for every rule and the default, as the engine names them."""
    out = [(f"rule:{rule['name']}", rule["choice"]) for rule in document.get("rules") or []]
    return [*out, ("default", document["default"])]


def _candidate_entries(choice: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"target": c, "weight": 1.0} if isinstance(c, str) else dict(c) for c in choice["candidates"]]


class _Stats:
    """Figures of a target for one rule: the rule's own samples when there are enough, else all of the target's."""

    def __init__(self, rows: list[SampleRow], min_samples: int) -> None:
        self.min_samples = max(1, min_samples)
        self.rule_rows = _by_rule(rows)
        self.all_rows = _by_target(rows)

    def get(self, key: str, target: str) -> Figures | None:
        own = self.rule_rows.get(key, {}).get(target, [])
        if len(own) >= self.min_samples:
            return figures(own)
        every = self.all_rows.get(target, [])
        return figures(every) if len(every) >= self.min_samples else None


def _train_weights(key: str, choice: dict[str, Any], stats: _Stats, changes: list[str]) -> None:
    entries = _candidate_entries(choice)
    measured = {i: f for i, e in enumerate(entries) if (f := stats.get(key, e["target"])) is not None and f.p95_ms is not None}
    if len(measured) < 2:
        return
    fastest = min(max(f.p95_ms or 0.0, 1.0) for f in measured.values())
    scores = {i: f.success_rate**2 * fastest / max(f.p95_ms or 0.0, 1.0) for i, f in measured.items()}
    total_weight = sum(float(entries[i].get("weight", 1.0)) for i in measured)
    total_score = sum(scores.values())
    if total_score <= 0:
        return  # every measured candidate always failed: nothing to prefer
    moved = []
    for i in measured:
        old = float(entries[i].get("weight", 1.0))
        new = round(max(MIN_SHARE, scores[i] / total_score) * total_weight, 4)
        if abs(new - old) > MIN_WEIGHT_CHANGE * max(old, 1e-9):
            entries[i]["weight"] = new
            moved.append(f"{entries[i]['target']} {old:g}→{new:g}")
    if moved:
        choice["candidates"] = entries
        changes.append(f"{key}: weights {', '.join(moved)}")


def _train_order(key: str, choice: dict[str, Any], stats: _Stats, changes: list[str]) -> None:
    entries = list(choice["candidates"])
    names = [c if isinstance(c, str) else c["target"] for c in entries]
    measured = [(i, f) for i, name in enumerate(names) if (f := stats.get(key, name)) is not None and f.p95_ms is not None]
    if len(measured) < 2:
        return
    slots = [i for i, _ in measured]
    ranked = sorted(measured, key=lambda item: (round(item[1].error_rate, 2), item[1].p95_ms, item[0]))
    reordered = list(entries)
    for slot, (source, _) in zip(slots, ranked, strict=True):
        reordered[slot] = entries[source]
    if reordered != entries:
        choice["candidates"] = reordered
        before = [names[i] for i in slots]
        after = [names[source] for source, _ in ranked]
        changes.append(f"{key}: order {' > '.join(before)} → {' > '.join(after)}")


def _train_thresholds(document: dict[str, Any], rows: list[SampleRow], min_samples: int, changes: list[str]) -> None:
    measured = [figures(target_rows) for target_rows in _by_target(rows).values() if len(target_rows) >= max(1, min_samples)]
    if len(measured) < 2:
        return
    rates = sorted(f.error_rate for f in measured)
    median = rates[len(rates) // 2] if len(rates) % 2 else (rates[len(rates) // 2 - 1] + rates[len(rates) // 2]) / 2
    threshold = min(0.8, max(0.2, round(2 * median + 0.1, 2)))
    samples_needed = max(5, math.floor(1 / threshold) + 1)  # one error among them stays under the threshold
    block = document.setdefault("settings", {})
    old_threshold = float(block.get("unhealthy_error_rate", 0.5))
    old_min = int(block.get("min_samples", 5))
    if abs(threshold - old_threshold) > 1e-9:
        block["unhealthy_error_rate"] = threshold
        changes.append(f"settings.unhealthy_error_rate {old_threshold:g}→{threshold:g}")
    if samples_needed != old_min:
        block["min_samples"] = samples_needed
        changes.append(f"settings.min_samples {old_min}→{samples_needed}")


def train(document: dict[str, Any], rows: list[SampleRow]) -> tuple[dict[str, Any], list[str]]:
    """A candidate policy document from DOCUMENT (left untouched) and the training ROWS, with what changed."""
    candidate = copy.deepcopy(document)
    min_samples = int((document.get("settings") or {}).get("min_samples", 5))
    stats = _Stats(rows, min_samples)
    changes: list[str] = []
    for key, choice in _choices(candidate):
        strategy = choice.get("strategy", "priority")
        if strategy == "weighted":
            _train_weights(key, choice, stats, changes)
        elif strategy == "priority":
            _train_order(key, choice, stats, changes)
    _train_thresholds(candidate, rows, min_samples, changes)
    return candidate, changes


def _healthy(name: str, policy: Policy, trained_on: dict[str, list[SampleRow]]) -> bool:
    rows = trained_on.get(name, [])
    return not (len(rows) >= policy.min_samples and figures(rows).error_rate >= policy.unhealthy_error_rate)


def _shares(policy: Policy, key: str, held: dict[str, list[SampleRow]], trained_on: dict[str, list[SampleRow]]) -> dict[str, float]:
    """Which part of a rule's traffic POLICY sends to each target that has held-out samples (empty: cannot tell)."""
    if key == "default":
        choice = policy.default
    else:
        found = [r.choice for r in policy.rules if f"rule:{r.name}" == key]
        if not found:
            return {}
        choice = found[0]
    listed = [(c.target, c.weight) for c in choice.candidates if c.target in held]
    if not listed:
        return {}
    healthy = [(name, weight) for name, weight in listed if _healthy(name, policy, trained_on)] or listed
    if choice.strategy == "weighted":
        total = sum(weight for _, weight in healthy)
        return {name: weight / total for name, weight in healthy} if total > 0 else {}
    if choice.strategy == "priority":
        return {healthy[0][0]: 1.0}
    # latency, cost, least-busy: training does not change them; both policies get the traffic mix observed.
    observed = {name: len(held[name]) for name, _ in listed}
    total_seen = sum(observed.values())
    return {name: count / total_seen for name, count in observed.items()}


def expected(policy: Policy, held_out: list[SampleRow], trained_on: list[SampleRow]) -> Expected:
    """Replay HELD_OUT against POLICY: each rule's samples re-weighted to the share POLICY gives each target."""
    trained_by_target = _by_target(trained_on)
    weighted: list[tuple[SampleRow, float]] = []
    for key, by_target in _by_rule(held_out).items():
        shares = _shares(policy, key, by_target, trained_by_target)
        volume = sum(len(rows) for rows in by_target.values())
        for name, share in shares.items():
            rows = by_target[name]
            weighted.extend((row, volume * share / len(rows)) for row in rows)
    total = sum(w for _, w in weighted)
    if total <= 0:
        return Expected(samples=0, error_rate=0.0, p95_ms=None, cost_per_call_usd=0.0)
    ordered = sorted(weighted, key=lambda item: item[0].latency_ms)
    running, p95 = 0.0, ordered[-1][0].latency_ms
    for row, w in ordered:  # weighted nearest rank
        running += w
        if running >= 0.95 * total - 1e-9:
            p95 = row.latency_ms
            break
    return Expected(
        samples=sum(1 for _, w in weighted if w > 0),
        error_rate=round(sum(w for row, w in weighted if row.outcome != "ok") / total, 6),
        p95_ms=p95,
        cost_per_call_usd=round(sum(w * row.cost_usd for row, w in weighted) / total, 9),
    )


def guard(current: Expected, candidate: Expected, bounds: GuardBounds) -> tuple[bool, str]:
    """(promote?, why): no worse on error rate, within the bounds on p95 and cost."""
    if current.samples < bounds.min_holdout_samples:
        return False, f"too few held-out samples to judge ({current.samples} < {bounds.min_holdout_samples})"
    if candidate.error_rate > current.error_rate + bounds.max_error_rate_increase + 1e-9:
        return False, f"the error rate would rise from {current.error_rate:.4f} to {candidate.error_rate:.4f}"
    if current.p95_ms is not None and candidate.p95_ms is not None:
        limit = current.p95_ms * (1 + bounds.max_p95_increase)
        if candidate.p95_ms > limit + 1e-9:
            return False, f"p95 would rise from {current.p95_ms:.1f} ms to {candidate.p95_ms:.1f} ms (bound {limit:.1f} ms)"
    cost_limit = current.cost_per_call_usd * (1 + bounds.max_cost_increase)
    if candidate.cost_per_call_usd > cost_limit + 1e-9:
        return False, (
            f"cost per call would rise from {current.cost_per_call_usd:.6f} to {candidate.cost_per_call_usd:.6f} USD"
            f" (bound {cost_limit:.6f})"
        )
    return True, "no worse on error rate, within the bounds on p95 and cost"


def dump_policy(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def run_training(policy_text: str, rows: list[SampleRow], *, bounds: GuardBounds | None = None, base_revision: int = 0) -> TrainingResult:
    """Train a candidate from ROWS on POLICY_TEXT (the active policy) and judge it on the held-out slice."""
    bounds = bounds or GuardBounds()
    current_policy = parse_policy(policy_text)
    document = yaml.safe_load(policy_text)
    trained_on, held_out = split(rows, bounds.holdout_fraction)
    candidate_document, changes = train(document, trained_on)
    candidate_text = dump_policy(candidate_document)
    candidate_policy = parse_policy(candidate_text)  # the schema and cross-references, as a reload checks them
    before = expected(current_policy, held_out, trained_on)
    after = expected(candidate_policy, held_out, trained_on)
    if not changes:
        promote, reason = False, "training found nothing to change"
    else:
        promote, reason = guard(before, after, bounds)
    decision = "promote" if promote else "no-change"
    report: dict[str, Any] = {
        "base_revision": base_revision,
        "samples": {"total": len(rows), "train": len(trained_on), "held_out": len(held_out), "evaluated": before.samples},
        "targets": {name: asdict(figures(target_rows)) for name, target_rows in sorted(_by_target(trained_on).items())},
        "changes": changes,
        "evaluation": {"current": asdict(before), "candidate": asdict(after), "bounds": asdict(bounds)},
        "decision": decision,
        "reason": reason,
    }
    return TrainingResult(decision=decision, reason=reason, candidate=candidate_text if changes else None, report=report)
