"""What every benchmark shares: the configuration under test, served instances, and the load generator.

Configurations (``AION_BENCH_CONFIG``, set by ``bench/run.py``):
  - ``embedded``: SQLite, in-process cache and limiter, filesystem broker (the README's defaults);
  - ``pg``: PostgreSQL (``AION_BENCH_DATABASE_URL``, default a scratch ``aion_bench`` database on
    127.0.0.1, dropped and recreated per bench) + Redis (``AION_BENCH_REDIS_URL``, default
    127.0.0.1:6379; databases N, N+1 and N+2 for cache, broker and idempotency, N from
    ``AION_BENCH_REDIS_DB``, default 4; the broker database is emptied per bench).

Load: ``wrk`` (Debian's package) when it is on PATH, otherwise a thread pool of keep-alive ``httpx``
clients. Either way N connections run at once; the same generator drives the baseline and the
path under test in the same run, so the ratio is fair even when absolute numbers are not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "AION_IDEMPOTENCY_REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")


def config() -> str:
    value = os.environ.get("AION_BENCH_CONFIG", "embedded")
    if value not in ("embedded", "pg"):
        raise SystemExit(f"AION_BENCH_CONFIG must be embedded or pg, not {value!r}")
    return value


def config_label() -> str:
    return "PG + Redis" if config() == "pg" else "embedded"


def connections() -> int:
    return int(os.environ.get("AION_BENCH_CONNECTIONS", "8"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reset_postgres(url: str) -> None:
    """Drops and recreates the scratch benchmark database (never anything else)."""
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    if not name.startswith("aion_bench"):
        raise SystemExit(f"refusing to reset {name!r}: benchmark databases are named aion_bench*")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def bench_env(**extra: str) -> dict[str, str]:
    """A fresh, migrated environment for the configuration under test (its own var folder)."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES and not k.startswith("AION_RATE_LIMIT")}
    env.update(
        AION_VAR_DIR=tempfile.mkdtemp(prefix="aion-bench-"),
        AION_TESTING="0",
        DJANGO_SETTINGS_MODULE="aion.settings",
        # The limiter still runs on every request; the bench only lifts the ceiling so it never refuses.
        AION_RATE_LIMIT_DEFAULT="1000000000/60",
        AION_RATE_LIMIT_WRITE="1000000000/60",
        AION_RATE_LIMIT_INGEST="1000000000/60",
        AION_RATE_LIMIT_HOOKS="1000000000/60",
        AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS="1",
    )
    if config() == "pg":
        database = os.environ.get("AION_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aion_bench")
        redis_base = os.environ.get("AION_BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
        first = int(os.environ.get("AION_BENCH_REDIS_DB", "4"))
        _reset_postgres(database)
        _flush_redis(f"{redis_base}/{first + 1}")  # queued tasks of an earlier run name rows that are gone
        env.update(
            DATABASE_URL=database,
            REDIS_URL=f"{redis_base}/{first}",
            CELERY_BROKER_URL=f"{redis_base}/{first + 1}",
            AION_IDEMPOTENCY_REDIS_URL=f"{redis_base}/{first + 2}",
        )
    metrics = Path(env["AION_VAR_DIR"]) / "prometheus"
    metrics.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    env.update(extra)
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return env


def setup_django(env: dict[str, str]) -> None:
    """For in-process benches: adopt the bench environment in this process, then django.setup()."""
    os.environ.update(env)
    for name in SERVICE_VARIABLES:
        if name not in env:
            os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout


def create_api_key(env: dict[str, str], roles: str, tenant: str = "bench") -> str:
    out = manage(env, "apikey_create", "--name", f"bench-{time.monotonic_ns()}", "--tenant", tenant, "--roles", roles)
    return out.strip().splitlines()[-1].strip()


@contextmanager
def served(env: dict[str, str], command: list[str] | None = None, ready_path: str = "/healthz") -> Iterator[str]:
    """Serves the product (by default as the Dockerfile does: one uvicorn process); yields the base URL."""
    import httpx

    port = free_port()
    command = command or [PY, "-m", "uvicorn", "aion.asgi:application", "--no-access-log", "--log-level", "warning"]
    if not any("{port}" in part for part in command):
        command = [*command, "--host", "127.0.0.1", "--port", "{port}"]
    command = [part.replace("{port}", str(port)) for part in command]
    log = open(Path(env["AION_VAR_DIR"]) / f"server-{port}.log", "wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + ready_path, timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@dataclass
class Load:
    """What a load run measured: rate, latency percentiles (ms) and how many answers were errors."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_WRK_SCRIPT = """
local method, body, headers = os.getenv("BENCH_METHOD") or "GET", os.getenv("BENCH_BODY"), {}
for name, value in string.gmatch(os.getenv("BENCH_HEADERS") or "", "([^\\n:]+):%s*([^\\n]*)") do headers[name] = value end
local counter = 0
local salt = tostring({}):match("0x(%x+)") or "0"
init = function() math.randomseed(os.time() + tonumber(salt:sub(-6), 16)) end
request = function()
  counter = counter + 1
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  if os.getenv("BENCH_UNIQUE_KEY") then h["Idempotency-Key"] = string.format("%s-%d-%d-%d", salt, os.time(), math.random(1e9), counter) end
  return wrk.format(method, nil, h, body)
end
statuses = {}
response = function(status) statuses[status] = (statuses[status] or 0) + 1 end
done = function(summary, latency, requests)
  io.write(string.format("BENCH_JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50\\": %f, \\"p99\\": %f, \\"non2xx\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def load(
    url: str,
    *,
    seconds: float = 5.0,
    conns: int | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    unique_idempotency_key: bool = False,
    generator: str | None = None,
) -> Load:
    """Drives ``url`` with ``conns`` concurrent keep-alive connections for ``seconds``."""
    conns = conns or connections()
    generator = generator or ("wrk" if shutil.which("wrk") else "threads")
    if generator == "wrk":
        return _wrk(url, seconds, conns, method, headers or {}, body, unique_idempotency_key)
    return _threads(url, seconds, conns, method, headers or {}, body, unique_idempotency_key)


def _wrk(url: str, seconds: float, conns: int, method: str, headers: dict[str, str], body: bytes | None, unique: bool) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    env = dict(os.environ, BENCH_METHOD=method, BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in headers.items()))
    if body is not None:
        env["BENCH_BODY"] = body.decode()
    if unique:
        env["BENCH_UNIQUE_KEY"] = "1"
    threads = max(1, min(2, conns))
    out: Any = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", script.name, url],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    os.unlink(script.name)
    if out.returncode != 0:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    out = out.stdout
    match = re.search(r"BENCH_JSON (\{.*\})", out)
    if not match:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    data = json.loads(match.group(1))
    return Load(data["requests"], data["seconds"], data["p50"], data["p99"], data["non2xx"], {})


def _threads(url: str, seconds: float, conns: int, method: str, headers: dict[str, str], body: bytes | None, unique: bool) -> Load:
    import uuid

    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client_loop(_: int) -> None:
        mine: list[float] = []
        codes: dict[int, int] = {}
        with httpx.Client(timeout=10) as client:
            stop_at = time.monotonic() + seconds
            while time.monotonic() < stop_at:
                extra = {"Idempotency-Key": uuid.uuid4().hex} if unique else {}
                t0 = time.perf_counter()
                try:
                    status = client.request(method, url, headers={**headers, **extra}, content=body).status_code
                except httpx.HTTPError:
                    status = 599
                mine.append(time.perf_counter() - t0)
                codes[status] = codes.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    elapsed = in_threads(conns, client_loop)
    latencies.sort()
    errors = sum(count for code, count in statuses.items() if code >= 400)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else 0.0
    return Load(len(latencies), elapsed, statistics.median(latencies) * 1000 if latencies else 0.0, p99 * 1000, errors, statuses)


def in_threads(count: int, target: Callable[[int], Any]) -> float:
    """Runs ``target(i)`` for i in range(count), each on its own thread, all released at once by a barrier.

    Returns the wall time from the release to the last join; re-raises the first error a thread raised.
    """
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            target(index)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def concurrent_calls(fn: Callable[[int], Any], total: int, workers: int | None = None) -> tuple[float, list[float]]:
    """Runs ``fn(i)`` for i in range(total) on ``workers`` threads; returns (seconds, sorted latencies in s)."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def loop(_: int) -> None:
        mine = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            fn(i)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    elapsed = in_threads(workers or connections(), loop)
    return elapsed, sorted(latencies)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, int(len(sorted_values) * fraction + 0.5) - 1))]


def row(benchmark: str, result: str, baseline: str, ratio: float | None, target: str = "") -> None:
    """One Markdown row of the performance table (``bench/run.py`` collects every line starting with '|')."""
    ratio_text = "" if ratio is None else f"{ratio:.2f}"
    print(f"| {benchmark} ({config_label()}) | {result} | {baseline} | {ratio_text} | {target} | {date.today()} |", flush=True)


HEADER = "| Benchmark | Result | Baseline (same run) | Ratio | Target | Date |\n| --- | --- | --- | --- | --- | --- |"
