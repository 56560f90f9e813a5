"""Tasks end to end (submit, route, execute on a local host, record) vs direct HTTP calls to the same host.

The module host is an instant ``ThreadingHTTPServer`` answering the ``/v1/invoke`` contract, in its
own process (a host is another machine; sharing a GIL with either side would hide its cost).

- Baseline: ``AION_BENCH_CONNECTIONS`` threads (default 8), each a loop of ``POST /v1/invoke`` through
  its own keep-alive ``httpx`` client, for the same number of seconds.
- End to end: the product served as the Dockerfile does (one uvicorn process), the same number of
  concurrent connections submitting ``POST /v1/tasks`` (the load generator of ``common.load``), and a
  real Celery worker (``--pool threads --concurrency`` the same number) consuming the configuration's
  broker: claim, decision event, guarded keep-alive call with the task id as ``Idempotency-Key``,
  runtime sample, final state, audit and outbox, in the configuration's database. The rate is tasks
  finished ``OK`` per second from the first submission to the last completion (the backlog drains
  inside the measured time, so a worker that lags the submissions lowers the figure).

Target (issue 13): at least 0.3 of the baseline.

    AION_BENCH_CONFIG=embedded|pg .venv/bin/python bench/router_tasks.py [--seconds 8] [--pool threads|prefork]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import PY, ROOT, bench_env, connections, create_api_key, in_threads, load, row, served, setup_django

HOST = r"""
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY = json.dumps({"output": "ok", "usage": {"tokens": 1, "cost_usd": 0}}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""
WORKER_FLAGS = ["--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"bench-router-{time.monotonic_ns()}@%h"]
BODY = json.dumps({"intent": "bench.echo", "params": {"n": 1}})


def start_host() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([PY, "-c", HOST], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{process.stdout.readline().strip()}"


def direct_calls(host: str, seconds: float, threads: int) -> float:
    import httpx

    counts: list[int] = []
    lock = threading.Lock()

    def loop(_: int) -> None:
        done = 0
        with httpx.Client(timeout=10) as client:
            stop_at = time.monotonic() + seconds
            while time.monotonic() < stop_at:
                response = client.post(f"{host}/v1/invoke", content=BODY, headers={"Content-Type": "application/json"})
                assert response.json()["output"] == "ok"
                done += 1
        with lock:
            counts.append(done)

    elapsed = in_threads(threads, loop)  # before summing: the counts fill in while it runs
    return sum(counts) / elapsed


def in_process_execution(seconds: float, threads: int) -> float:
    """What the worker's threads do per task, without broker and gateway: ``services.execute_task`` on PENDING rows."""
    import queue

    from django.db import connection

    from router import services
    from router.models import Task

    pending = Task.objects.bulk_create(
        [Task(tenant_id="bench", intent="bench.echo", params={"n": 1}, submitted_by="bench") for _ in range(int(seconds * 2000))]
    )
    work: queue.SimpleQueue[str] = queue.SimpleQueue()
    for task in pending:
        work.put(str(task.id))
    counts: list[int] = []
    lock = threading.Lock()

    def loop(_: int) -> None:
        done = 0
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            assert services.execute_task(work.get_nowait()) == "OK"
            connection.close()  # as Celery does after each task: the connection goes back to the pool
            done += 1
        with lock:
            counts.append(done)

    elapsed = in_threads(threads, loop)
    rate = sum(counts) / elapsed
    Task.objects.filter(status="PENDING").delete()
    return rate


def wait_until(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pool", choices=("threads", "prefork"), default="threads")
    args = parser.parse_args()
    n = connections()
    host_process, host = start_host()
    policy = Path(tempfile.mkdtemp(prefix="aion-bench-router-")) / "router.yml"
    policy.write_text(
        f"version: 1\nsettings: {{registry_modules: false}}\ntargets: [{{name: instant, kind: module, endpoint: '{host}'}}]\n"
        "default: {route: local, strategy: priority, candidates: [instant]}\n"
    )
    env = bench_env(AION_ROUTER_POLICY_PATH=str(policy), AION_LOG_LEVEL="WARNING")
    setup_django(env)
    from django.db import connection
    from django.db.models import Max, Min

    from router.models import Task

    key = create_api_key(env, "router.admin", tenant="bench")
    headers = {"x-api-key": key, "Content-Type": "application/json"}
    concurrency = str(n) if args.pool == "threads" else "2"
    worker_log = open(Path(env["AION_VAR_DIR"]) / "worker.log", "wb")
    worker = subprocess.Popen(
        [PY, "-m", "celery", "-A", "aion", "worker", "-l", "WARNING", "--pool", args.pool, "--concurrency", concurrency, *WORKER_FLAGS],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        baseline = direct_calls(host, args.seconds, n)
        executed = in_process_execution(args.seconds, n)
        connection.close()
        row(
            f"Task execution alone (execute_task on {n} threads in one process: claim, call, record)",
            f"{executed:,.0f} tasks/s",
            f"direct HTTP to the same host, {n} threads: {baseline:,.0f} calls/s",
            executed / baseline,
            "(part of the end-to-end path)",
        )
        with served(env) as base:
            import httpx

            # Warm-up (server, worker, policy bootstrap, pooled connections): not measured.
            for _ in range(n):
                assert httpx.post(f"{base}/v1/tasks", content=BODY, headers=headers, timeout=10).status_code == 202
            wait_until(lambda: Task.objects.exclude(status="OK").count() == 0, 60, "the warm-up tasks")
            connection.close()
            measured_from = Task.objects.aggregate(m=Max("created_at"))["m"]
            submitted = load(f"{base}/v1/tasks", seconds=args.seconds, method="POST", headers=headers, body=BODY.encode())
            measured = Task.objects.filter(created_at__gt=measured_from)
            wait_until(lambda: not measured.exclude(status__in=["OK", "ERROR", "TIMEOUT"]).exists(), 120, "the submitted tasks")
            span = measured.aggregate(first=Min("created_at"), last=Max("finished_at"))
            ok = measured.filter(status="OK").count()
            failed = measured.exclude(status="OK").count()
        seconds = (span["last"] - span["first"]).total_seconds()
        rate = ok / seconds if seconds else 0.0
        row(
            f"Tasks end to end (POST /v1/tasks, Celery {args.pool} ×{concurrency}, {n} connections)",
            f"{rate:,.0f} tasks/s ({ok} OK, {failed} not OK, {submitted.errors} submit errors; submit {submitted.rate:,.0f}/s)",
            f"direct HTTP to the same host, {n} threads: {baseline:,.0f} calls/s",
            rate / baseline,
            "≥ 0.3×",
        )
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker_log.close()
        host_process.terminate()
        host_process.wait(timeout=10)


if __name__ == "__main__":
    main()
