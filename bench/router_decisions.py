"""Routing decisions per second on a 200-rule policy: the engine alone, and the service path.

Rows (each measured on 1 thread, then on ``AION_BENCH_CONNECTIONS`` threads at once):
  * engine: ``router.engine.decide`` on a 200-rule policy, against the same call on a 1-rule policy
    measured in the same run (the ratio is the cost of the rule scan). Half the tasks match the
    last rule, half fall through to the default: the worst case of an ordered scan.
  * engine, new routing keys: every task has an intent never seen before, so the rule index's memo
    misses and the 200 rules are scanned (an upper bound on what unbounded key churn costs).
  * service: ``router.services.route_task`` (the dry-run path: active-revision check and runtime
    figures read from the configuration's database, cached per process), against the engine alone.

Targets (issue 13): engine ≥ 20,000/s with p99 < 1 ms; service ≥ 10,000/s. Python holds the GIL, so
threads share one core's worth of decisions; the 1-thread figure is the engine "on one core".

    AION_BENCH_CONFIG=embedded|pg .venv/bin/python bench/router_decisions.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import bench_env, concurrent_calls, connections, percentile, row, setup_django

TARGETS = """
targets:
  - {name: local-a, kind: module, endpoint: "http://10.0.0.1:8080"}
  - {name: local-b, kind: module, endpoint: "http://10.0.0.2:8080"}
  - {name: cheap, kind: provider, base_url: "https://api.example/v1", model: m, price_per_1k_tokens: 0.1}
  - {name: pricey, kind: provider, base_url: "https://api.example/v1", model: m, price_per_1k_tokens: 2}
"""
STRATEGIES = ["priority", "weighted", "latency", "cost", "least-busy"]


def policy_text(rules: int) -> str:
    lines = ["version: 1", "settings: {seed: 3, registry_modules: false}", TARGETS, "rules:"]
    for i in range(rules - 1):
        lines.append(
            f"  - name: r{i}\n    match: {{intent: ['team{i}.*'], priority: [high], metadata: {{team: 't{i}-*'}}}}\n"
            f"    choice: {{route: hybrid, strategy: {STRATEGIES[i % 5]}, candidates: [local-a, cheap, local-b], fallbacks: [pricey]}}"
        )
    lines.append(
        "  - name: catch-chat\n    match: {intent: 'chat.*'}\n"
        "    choice: {route: hybrid, strategy: latency, candidates: [local-a, local-b, cheap], fallbacks: [pricey]}"
    )
    lines.append("default: {route: hybrid, strategy: weighted, candidates: [{target: local-a, weight: 3}, cheap]}")
    return "\n".join(lines) + "\n"


class Measured:
    def __init__(self, rate: float, p50_us: float, p99_us: float) -> None:
        self.rate, self.p50_us, self.p99_us = rate, p50_us, p99_us

    def text(self) -> str:
        return f"{self.rate:,.0f}/s, p50 {self.p50_us:,.0f} µs, p99 {self.p99_us:,.0f} µs"


def measure(fn: Callable[[int], Any], seconds: float, threads: int) -> Measured:
    """Calls ``fn(i)`` on THREADS threads at once for about SECONDS (count calibrated on one thread)."""
    fn(0)
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < 0.3:
        fn(calls)
        calls += 1
    total = max(200, int(calls / (time.perf_counter() - started) * seconds))
    elapsed, latencies = concurrent_calls(fn, total, workers=threads)
    return Measured(total / elapsed, percentile(latencies, 0.5) * 1e6, percentile(latencies, 0.99) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    env = bench_env(AION_LOG_LEVEL="WARNING")
    setup_django(env)

    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from aion.auth.principal import system_principal
    from router import services
    from router.engine import RuntimeView, TargetStats, TaskSpec, decide
    from router.models import RuntimeSample
    from router.policy import parse_policy
    from router.policy_store import forget_cached_policy

    view = RuntimeView(
        stats={"local-a": TargetStats(20, 40, 0.0, 50), "local-b": TargetStats(10, 80, 0.0, 50), "cheap": TargetStats(200, 400, 0.01, 50)}
    )
    now = timezone.now()
    RuntimeSample.objects.bulk_create(
        [
            RuntimeSample(target=t, route="local", tenant_id="acme", outcome="ok", latency_ms=10 + i % 50, created_at=now)
            for t in ("local-a", "local-b", "cheap")
            for i in range(200)
        ]
    )

    def engine_for(policy: Any) -> Callable[[int], Any]:
        def engine(i: int) -> None:
            intent = "chat.answer" if i % 2 else "other.x"
            decide(policy, TaskSpec(intent=intent, tenant_id="acme", key=str(i), priority="high", params={"prompt": "hi"}), view)

        return engine

    big, small = parse_policy(policy_text(200), revision=1), parse_policy(policy_text(1), revision=1)
    fresh = itertools.count()

    def engine_new_keys(i: int) -> None:
        # A new intent per call: the memo never hits (it is bounded, so it also clears itself).
        spec = TaskSpec(intent=f"other.{next(fresh)}", tenant_id="acme", key=str(i), priority="high", params={"prompt": "hi"})
        decide(big, spec, view)

    path = Path(settings.VAR_DIR) / "router-200.yml"
    path.write_text(policy_text(200))
    settings.AION_ROUTER_POLICY_PATH = str(path)
    forget_cached_policy()
    services.reload_policy(actor=system_principal("acme", "bench"), tenant_id="acme")

    def service(i: int) -> None:
        services.route_task(
            {"intent": "chat.answer" if i % 2 else "other.x", "params": {"prompt": "hi"}, "priority": "high", "seed": str(i)},
            tenant_id="acme",
        )
        # What the end of a request does: a thread that touched the database hands its connection back
        # (the PostgreSQL pool holds AION_DB_POOL_SIZE; a no-op when nothing was opened).
        connection.close()

    n = connections()
    for threads in (1, n):
        label = "1 thread" if threads == 1 else f"{threads} threads"
        engine = measure(engine_for(big), args.seconds, threads)
        baseline = measure(engine_for(small), args.seconds, threads)
        row(
            f"Router decisions, 200-rule policy, engine, {label}",
            engine.text(),
            f"1-rule policy: {baseline.text()}",
            engine.rate / baseline.rate,
            "≥ 20,000/s, p99 < 1 ms",
        )
        misses = measure(engine_new_keys, args.seconds, threads)
        row(
            f"Router decisions, 200-rule policy, engine, every task a new routing key, {label}",
            misses.text(),
            f"repeated keys: {engine.text()}",
            misses.rate / engine.rate,
            "(no target: the memo's worst case)",
        )
        routed = measure(service, args.seconds, threads)
        row(
            f"Router decisions, service path (revision and runtime lookups), {label}",
            routed.text(),
            f"engine alone: {engine.text()}",
            routed.rate / engine.rate,
            "≥ 10,000/s",
        )


if __name__ == "__main__":
    main()
