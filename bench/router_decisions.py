"""Routing decisions per second with a 200-rule policy, with p50/p99 latency.

Two measurements, each against a 1-rule policy as the baseline in the same run:
  * engine: ``router.engine.decide`` alone (policy parsed, runtime view in memory);
  * service: ``router.services.route_task`` (the dry-run path: active-revision check and
    runtime stats read from the embedded SQLite database, as in production per request).
Most tasks match a late rule or fall through to the default: the worst case for rule scanning.

    .venv/bin/python bench/router_decisions.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
os.environ.setdefault("AION_VAR_DIR", tempfile.mkdtemp(prefix="aion-bench-"))
os.environ.setdefault("AION_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

TARGETS = """
targets:
  - {name: local-a, kind: module, endpoint: "http://10.0.0.1:8080"}
  - {name: local-b, kind: module, endpoint: "http://10.0.0.2:8080"}
  - {name: cheap, kind: provider, base_url: "https://api.example/v1", model: m, price_per_1k_tokens: 0.1}
  - {name: pricey, kind: provider, base_url: "https://api.example/v1", model: m, price_per_1k_tokens: 2}
"""
STRATEGIES = ["priority", "weighted", "latency", "cost", "least-busy"]


def policy_text(rules: int) -> str:
    lines = ["version: 1", "settings: {seed: 3}", TARGETS, "rules:"]
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


def measure(fn, seconds: float) -> tuple[float, float, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        fn(len(latencies))
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    total = sum(latencies)
    return len(latencies) / total, statistics.median(latencies) * 1e6, latencies[int(len(latencies) * 0.99) - 1] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    from django.conf import settings
    from django.utils import timezone

    from aion.auth.principal import system_principal
    from router import services
    from router.engine import RuntimeView, TargetStats, TaskSpec, decide
    from router.models import RuntimeSample
    from router.policy import forget_cached_policy, parse_policy

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
    results = {}
    for rules in (200, 1):
        policy = parse_policy(policy_text(rules), revision=1)

        def engine(i: int, policy=policy) -> None:
            decide(
                policy,
                TaskSpec(
                    intent="chat.answer" if i % 2 else "other.x", tenant_id="acme", key=str(i), priority="high", params={"prompt": "hi"}
                ),
                view,
            )

        path = Path(settings.VAR_DIR) / f"router-{rules}.yml"
        path.write_text(policy_text(rules))
        settings.AION_ROUTER_POLICY_PATH = str(path)
        forget_cached_policy()
        services.reload_policy(actor=system_principal("acme", "bench"), tenant_id="acme")

        def service(i: int) -> None:
            services.route_task(
                {"intent": "chat.answer" if i % 2 else "other.x", "params": {"prompt": "hi"}, "priority": "high", "seed": str(i)},
                tenant_id="acme",
            )

        results[rules] = (measure(engine, args.seconds), measure(service, args.seconds))
    date = time.strftime("%Y-%m-%d")
    for index, name in enumerate(("engine", "service (DB)")):
        rate, p50, p99 = results[200][index]
        base_rate, base_p50, base_p99 = results[1][index]
        print(
            f"| router decisions, 200 rules, {name} | {rate:,.0f}/s, p50 {p50:,.0f} µs, p99 {p99:,.0f} µs "
            f"| 1 rule: {base_rate:,.0f}/s, p50 {base_p50:,.0f} µs, p99 {base_p99:,.0f} µs | {rate / base_rate:.2f} | {date} |"
        )


if __name__ == "__main__":
    main()
