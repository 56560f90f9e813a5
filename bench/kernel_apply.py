"""Approve → applied under concurrent load, against a bare view doing one INSERT on the same database.

Both are served the way the Dockerfile serves the product (one uvicorn process), in the configuration
under test (``AION_BENCH_CONFIG``), and driven by the same generator (``common.concurrent_calls``: N
threads, ``AION_BENCH_CONNECTIONS``, default 8, each with its own keep-alive client):
  - baseline: ``POST /bare-insert`` of ``bench.baseline_asgi`` (no middleware; one INSERT in a transaction);
  - the product: proposals (risk 0.7, so two approvals; the policy auto-applies on the final one) are
    submitted and approved once by admin A beforehand; what is timed is admin B's approval, the request
    that makes the proposal applied (lock, drift check, new revision, audit and outbox in one transaction).
Each client thread mostly works on its own scope (applies on one scope serialise by design, a lock
wait is not what this measures); each proposal sets its own key, so none drifts.
Usage: .venv/bin/python bench/kernel_apply.py [applies]      (default 400)
       .venv/bin/python bench/kernel_apply.py --queries      (SQL statements of one approve→apply, in process)
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import yaml
from common import PY, ROOT, bench_env, concurrent_calls, connections, create_api_key, percentile, row, served

SCOPES = [f"bench_{i}" for i in range(8)]
TARGET = "≤ 2× p95, < 50 ms"


def policy_path(keys_per_scope: int) -> str:
    """The shipped policy plus eight scopes with enough integer keys for one key per proposal."""
    data = yaml.safe_load((ROOT / "policies" / "kernel" / "policy.yaml").read_text())
    keys = {f"k{i:04d}": {"type": "integer", "min": 0, "max": 1_000_000} for i in range(keys_per_scope)}
    for scope in SCOPES:
        data["scopes"][scope] = {"description": "bench", "keys": keys}
    path = Path(tempfile.mkdtemp(prefix="aion-bench-policy-")) / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def proposal_body(i: int) -> dict[str, Any]:
    return {
        "scope": SCOPES[i % len(SCOPES)],
        "changes": [{"key": f"k{i // len(SCOPES):04d}", "from": None, "to": i}],
        "justification": f"bench apply {i}",
        "risk_score": 0.7,  # two approvals: A's is recorded beforehand, B's applies
    }


class Clients(threading.local):
    """One keep-alive client per load thread."""

    def __init__(self) -> None:
        self.client = httpx.Client(timeout=30)


def timed(fn: Any, total: int) -> tuple[list[float], int]:
    """Latencies (s, sorted) of FN(i) for i < TOTAL on N threads, and how many answers were wrong."""
    errors = [0]
    lock = threading.Lock()

    def call(i: int) -> None:
        if not fn(i):
            with lock:
                errors[0] += 1

    _, latencies = concurrent_calls(call, total)
    return latencies, errors[0]


def measure(applies: int) -> None:
    warm = max(2 * connections(), 16)
    total = applies + warm
    env = bench_env(AION_KERNEL_POLICY_PATH=policy_path(total // len(SCOPES) + 1))
    proposer = {"x-api-key": create_api_key(env, "kernel.proposer")}
    admin_a = {"x-api-key": create_api_key(env, "kernel.admin")}
    admin_b = {"x-api-key": create_api_key(env, "kernel.admin")}
    clients = Clients()

    uvicorn = [PY, "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]
    with served(env, [*uvicorn, "bench.baseline_asgi:application"], ready_path="/bare") as base:

        def insert(i: int) -> bool:
            return clients.client.post(base + "/bare-insert", content=b'{"bench": %d}' % i).status_code == 201

        timed(insert, warm)
        baseline, baseline_errors = timed(insert, applies)

    clients = Clients()  # new connections for the new server
    with served(env) as base:
        ids: dict[int, str] = {}

        def submit(i: int) -> bool:
            response = clients.client.post(base + "/v1/kernel/proposals", json=proposal_body(i), headers=proposer)
            ids[i] = response.json().get("id", "")
            return response.status_code == 201

        def approve(headers: dict[str, str], wanted: str) -> Any:
            def call(i: int) -> bool:
                response = clients.client.post(base + f"/v1/kernel/proposals/{ids[i]}/approve", json={}, headers=headers)
                return response.status_code == 200 and response.json().get("state") == wanted

            return call

        _, submit_errors = timed(submit, total)
        _, first_errors = timed(approve(admin_a, "pending"), total)
        if submit_errors or first_errors:
            raise SystemExit(f"setup failed: {submit_errors} submits, {first_errors} first approvals went wrong")
        final = approve(admin_b, "applied")
        timed(final, warm)  # warm-up: the first applies of each scope create its head
        applied, apply_errors = timed(lambda i: final(i + warm), applies)

    base_p50, base_p95 = percentile(baseline, 0.5) * 1000, percentile(baseline, 0.95) * 1000
    p50, p95 = percentile(applied, 0.5) * 1000, percentile(applied, 0.95) * 1000
    load = f"{connections()} concurrent clients"
    base_text = f"POST /bare-insert p50 {base_p50:.1f} ms, p95 {base_p95:.1f} ms ({load})"
    errors = f", {apply_errors} not applied" if apply_errors else ""
    base_errors = f", {baseline_errors} errors" if baseline_errors else ""
    row("kernel_apply: bare view + one INSERT", base_text + base_errors, base_text, 1.0)
    row(
        "kernel_apply: approve → applied (final approval, auto-apply)",
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, {len(applied)} applies{errors}",
        base_text,
        p95 / base_p95 if base_p95 else None,
        TARGET,
    )


def count_queries() -> None:
    """The SQL statements of one final approval (approve → applied), run in process through the API."""
    from common import setup_django

    env = bench_env(AION_KERNEL_POLICY_PATH=policy_path(8))
    setup_django(env)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from aion.testing.factories import api_client, make_api_key

    proposer = api_client(make_api_key(["kernel.proposer"], "bench", name="proposer")[0])
    admin_a = api_client(make_api_key(["kernel.admin"], "bench", name="admin-a")[0])
    admin_b = api_client(make_api_key(["kernel.admin"], "bench", name="admin-b")[0])
    for i in range(3):  # the third is a steady-state apply: the scope has a head and a revision
        proposal = proposer.post("/v1/kernel/proposals", proposal_body(i * len(SCOPES)), format="json").json()
        admin_a.post(f"/v1/kernel/proposals/{proposal['id']}/approve", {}, format="json")
        with CaptureQueriesContext(connection) as queries:
            response = admin_b.post(f"/v1/kernel/proposals/{proposal['id']}/approve", {}, format="json")
        assert response.json()["state"] == "applied", response.json()
    print(f"approve → applied: {len(queries.captured_queries)} SQL statements ({connection.vendor})")
    for query in queries.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:160]}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--queries"]:
        count_queries()
    else:
        measure(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
