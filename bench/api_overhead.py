"""Gateway overhead: authenticated API calls against a bare Django JSON view on the same server.

Starts the real ASGI server (uvicorn, one process) on embedded defaults in a temp AION_VAR_DIR,
then times, over the same keep-alive client:
  - baseline: GET /healthz (a bare Django JSON view behind the same middleware);
  - GET /v1/whoami with x-api-key (API-key auth, RBAC, tenancy, rate limiter, DRF rendering);
  - GET /v1/kernel/proposals with x-api-key (plus a tenant-scoped, paginated DB query);
  - POST /v1/kernel/proposals with a fresh Idempotency-Key each time (validation, policy, audit,
    outbox, idempotency store).
Prints one Markdown row per endpoint: requests/s, p50 and p99, and the ratio to the baseline.
Usage: .venv/bin/python bench/api_overhead.py [N]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(client: httpx.Client, n: int, request) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        response = request(client, i)
        latencies.append(time.perf_counter() - t0)
        if response.status_code >= 400:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")
    total = time.perf_counter() - started
    latencies.sort()
    return n / total, statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99) - 1] * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    var = tempfile.mkdtemp(prefix="aion-bench-")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(AION_VAR_DIR=var, AION_RATE_LIMIT_DEFAULT="100000000/60", AION_RATE_LIMIT_WRITE="100000000/60")
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [PY, "manage.py", "apikey_create", "--name", "bench", "--tenant", "bench", "--roles", "kernel.proposer,auditor"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    key = out.strip().splitlines()[-1].strip()
    port = free_port()
    server = subprocess.Popen(
        [PY, "-m", "uvicorn", "aion.asgi:application", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(100):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            headers = {"x-api-key": key}
            # warm-up
            for path in ("/healthz", "/v1/whoami", "/v1/kernel/proposals"):
                for _ in range(20):
                    client.get(path, headers=headers)
            body = {
                "scope": "sysctl",
                "changes": [{"key": "vm.swappiness", "from": None, "to": 10}],
                "justification": "bench",
                "risk_score": 0.1,
            }
            cases = {
                "GET /healthz (bare Django JSON view, baseline)": lambda c, i: c.get("/healthz"),
                "GET /v1/whoami (API key, RBAC, rate limit)": lambda c, i: c.get("/v1/whoami", headers=headers),
                "GET /v1/kernel/proposals (+ scoped DB page)": lambda c, i: c.get("/v1/kernel/proposals", headers=headers),
                "POST /v1/kernel/proposals (+ policy, audit, outbox, Idempotency-Key)": lambda c, i: c.post(
                    "/v1/kernel/proposals", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
                ),
            }
            results = {name: timed(client, n if "POST" not in name else max(50, n // 5), fn) for name, fn in cases.items()}
    finally:
        server.terminate()
        server.wait(timeout=10)
    baseline = next(iter(results.values()))[0]
    print("| Benchmark | Result | Baseline (same run) | Ratio | Date |")
    print("| --- | --- | --- | --- | --- |")
    for name, (rate, p50, p99) in results.items():
        print(
            f"| api_overhead: {name} | {rate:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms | "
            f"GET /healthz {baseline:,.0f} req/s | {rate / baseline:.2f} | {date.today()} |"
        )


if __name__ == "__main__":
    main()
