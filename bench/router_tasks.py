"""Task throughput end to end against a local instant module host, versus direct HTTP calls to it.

End to end = ``POST /v1/tasks`` through the full Django stack (auth, RBAC, validation, routing,
audit, outbox) and execution (claim, decision event, guarded HTTP call with the task id as
Idempotency-Key, runtime sample, final state). By default execution runs in-process, one task
after another (what one worker process does); ``--worker`` also measures a real Celery worker
subprocess (solo pool) fed through the configured broker. The baseline is the same number of
sequential direct ``httpx.post`` calls to the same host, through one pooled client, like the
router's shared client.

    .venv/bin/python bench/router_tasks.py [--tasks 200] [--worker]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
os.environ.setdefault("AION_VAR_DIR", tempfile.mkdtemp(prefix="aion-bench-"))
os.environ.setdefault("AION_LOG_LEVEL", "WARNING")
# The bench measures the router, not the gateway's per-key write limit.
os.environ.setdefault("AION_RATE_LIMIT_WRITE", "1000000/60")
os.environ.setdefault("AION_RATE_LIMIT_DEFAULT", "1000000/60")
os.environ["AION_ROUTER_POLICY_PATH"] = str(Path(os.environ["AION_VAR_DIR"]) / "router-bench.yml")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402

REPLY = json.dumps({"output": "ok", "usage": {"tokens": 1, "cost_usd": 0}}).encode()


class InstantHost(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    from django.test import Client

    from aion.testing.factories import make_api_key
    from router import services
    from router.models import Task

    server = ThreadingHTTPServer(("127.0.0.1", 0), InstantHost)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    Path(os.environ["AION_ROUTER_POLICY_PATH"]).write_text(
        f"version: 1\ntargets: [{{name: instant, kind: module, endpoint: '{host}'}}]\n"
        "default: {route: local, strategy: priority, candidates: [instant]}\n"
    )
    raw, _ = make_api_key(["router.admin"], "bench")
    client = Client(HTTP_X_API_KEY=raw)
    body = json.dumps({"intent": "bench.echo", "params": {"n": 1}})

    with httpx.Client() as http:  # pooled, like the router's shared client
        started = time.perf_counter()
        for _ in range(args.tasks):
            http.post(f"{host}/v1/invoke", content=body, headers={"Content-Type": "application/json"}, timeout=5).json()
        direct = args.tasks / (time.perf_counter() - started)

    started = time.perf_counter()
    for _ in range(args.tasks):
        response = client.post("/v1/tasks", body, content_type="application/json")
        assert response.status_code == 202, response.content
        assert services.execute_task(response.json()["id"]) == "OK"
    in_process = args.tasks / (time.perf_counter() - started)
    date = time.strftime("%Y-%m-%d")
    baseline = f"direct HTTP: {direct:,.0f} calls/s"
    row = f"| router tasks end to end, in-process ({args.tasks} tasks) | {in_process:,.0f} tasks/s | {baseline} |"
    print(f"{row} {in_process / direct:.2f} | {date} |")

    if args.worker:
        from aion.testing.processes import ROOT as project_root

        env = dict(os.environ)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "aion", "worker", "-l", "WARNING", "--pool", "solo"],
            cwd=project_root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)  # let the worker connect before timing
            started = time.perf_counter()
            ids = []
            for _ in range(args.tasks):
                response = client.post("/v1/tasks", body, content_type="application/json")
                ids.append(response.json()["id"])
            deadline = time.monotonic() + 300
            while Task.objects.filter(pk__in=ids, status="OK").count() < len(ids) and time.monotonic() < deadline:
                time.sleep(0.05)
            done = Task.objects.filter(pk__in=ids, status="OK").count()
            with_worker = done / (time.perf_counter() - started)
        finally:
            worker.terminate()
            worker.wait(10)
        row = f"| router tasks end to end, Celery worker (solo, {done} tasks) | {with_worker:,.0f} tasks/s | {baseline} |"
        print(f"{row} {with_worker / direct:.2f} | {date} |")
    server.shutdown()


if __name__ == "__main__":
    main()
