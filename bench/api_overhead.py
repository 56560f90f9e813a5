"""Gateway overhead under concurrent load: the product's routes against a bare Django view.

Both are served the way the Dockerfile serves the product (one uvicorn process), in the configuration
under test (``AION_BENCH_CONFIG``), and driven by the same load generator (wrk, N keep-alive
connections, ``AION_BENCH_CONNECTIONS``, default 8):
  - baseline: ``GET /bare`` of ``bench.baseline_asgi`` (a Django JSON view, no middleware, no database),
    served by Django's ASGI handler (the issue's baseline) and, stricter, by the product's own HTTP path;
  - ``GET /healthz`` (our middleware stack, no database);
  - ``GET /v1/whoami`` with ``x-api-key`` (authentication, RBAC, tenancy, rate limiter, DRF rendering);
  - ``GET /v1/kernel/proposals`` (plus a tenant-scoped, paginated page of 20 proposals);
  - ``POST /v1/kernel/proposals`` with a fresh ``Idempotency-Key`` each time (policy, audit, outbox).
Usage: .venv/bin/python bench/api_overhead.py [seconds per case]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import PY, bench_env, create_api_key, load, row, served

TARGETS = {"/healthz": "≥ 0.9×", "/v1/whoami": "≥ 0.6×, ≤ 1 ms added at p50", "/v1/kernel/proposals": "≥ 0.5×"}


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    env = bench_env()
    key = create_api_key(env, "kernel.proposer,auditor")
    headers = {"x-api-key": key}
    uvicorn = [PY, "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]
    with served(env, [*uvicorn, "bench.baseline_asgi:application"], ready_path="/bare") as base:
        load(base + "/bare", seconds=1)  # warm-up
        baseline = load(base + "/bare", seconds=seconds)
    with served(env, [*uvicorn, "bench.baseline_asgi:same_path_application"], ready_path="/bare") as base:
        load(base + "/bare", seconds=1)
        same_path = load(base + "/bare", seconds=seconds)
    results = {}
    body = {
        "scope": "sysctl",
        "changes": [{"key": "vm.swappiness", "from": None, "to": 10}],
        "justification": "bench",
        "risk_score": 0.1,
    }
    with served(env, [*uvicorn, "aion.asgi:application"]) as base:
        for i in range(20):  # a page of proposals for the list to render
            httpx.post(base + "/v1/kernel/proposals", json={**body, "justification": f"bench {i}"}, headers=headers, timeout=10)
        for path in ("/healthz", "/v1/whoami", "/v1/kernel/proposals"):
            load(base + path, seconds=1, headers=headers)  # warm-up
            results[f"GET {path}"] = load(base + path, seconds=seconds, headers=headers)
        post_headers = {**headers, "Content-Type": "application/json"}
        results["POST /v1/kernel/proposals"] = load(
            base + "/v1/kernel/proposals",
            seconds=seconds,
            method="POST",
            headers=post_headers,
            body=json.dumps(body).encode(),
            unique_idempotency_key=True,
        )
    base_text = f"bare view (Django ASGI handler) {baseline.rate:,.0f} req/s, p50 {baseline.p50_ms:.2f} ms"
    strict = f"bare view on our HTTP path {same_path.rate:,.0f} req/s, p50 {same_path.p50_ms:.2f} ms"
    row("api_overhead: GET /bare (no middleware, no database)", base_text, base_text, 1.0)
    row("api_overhead: GET /bare on the product's HTTP path (a2wsgi pool)", strict, base_text, same_path.rate / baseline.rate)
    for name, result in results.items():
        added = result.p50_ms - baseline.p50_ms
        errors = f", {result.errors} errors" if result.errors else ""
        text = f"{result.rate:,.0f} req/s, p50 {result.p50_ms:.2f} ms ({added:+.2f}), p99 {result.p99_ms:.2f} ms{errors}"
        target = TARGETS.get(name.split(" ", 1)[1], "")
        row(
            f"api_overhead: {name}",
            text,
            f"{base_text}; {strict}: {result.rate / same_path.rate:.2f}×",
            result.rate / baseline.rate,
            target,
        )


if __name__ == "__main__":
    main()
