"""Memory ingest throughput (MiB/s) over HTTP with 4 MiB chunks, versus the same work in process.

The product side: the served product (``common.served()``: uvicorn, one process, as the Dockerfile
runs it), driven by ``--clients`` concurrent keep-alive ``httpx`` clients, each sending its own
upload of ``--chunks`` chunks in order (auth, RBAC, rate limit, body parsing, sha256, the chunk
claim and its durable write through the storage layer, progress update, response). Two forms:

  - ``json``: the compatible form, ``{"data": <base64>, ...}`` (a 5.6 MB body per 4 MiB chunk);
  - ``raw``: ``Content-Type: application/octet-stream``, the bytes as the body, the fields in the
    query string and the digest in ``X-Chunk-Sha256`` (see docs/memory.md).

Two baselines, measured in the same run at the same concurrency (``--clients`` threads, the same
chunks); rounds alternate them and each form, and the rows report the median round:

  - the issue's, as it was measured (the row's ratio): stdlib strict base64 decode, sha256, write;
  - a stricter one (in the baseline cell): the least work that stores a chunk durably, as the
    product now does before acknowledging it: the product's decoder (pybase64, strict), sha256,
    write, fsync the file and its folder.

    AION_BENCH_CONFIG=embedded|pg .venv/bin/python bench/memory_ingest.py [--clients 4] [--chunks 12] [--forms json,raw]
    AION_BENCH_PROFILE=/tmp/ingest.txt ...   # instead: one run per form under py-spy (raw stacks in /tmp/ingest.txt.<form>)
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import bench_env, create_api_key, in_threads, row, served

MiB = 1024 * 1024
TARGET = ">= 0.5x"


def decode_like_the_product(text: bytes) -> bytes:
    """The decoder the product uses (memory.services.decode_chunk: pybase64, strict), so the ratio compares the rest."""
    import pybase64

    return pybase64.b64decode(text, validate=True)


def make_chunks(clients: int, chunks: int, chunk_bytes: int) -> list[list[bytes]]:
    """Every chunk differs (its first bytes), so a mix-up would change the checksums."""
    block = os.urandom(chunk_bytes)
    return [[(c * 100_000 + i).to_bytes(8, "big") + block[8:] for i in range(chunks)] for c in range(clients)]


def run_threads(work: list[list[object]], fn) -> float:  # type: ignore[no-untyped-def]
    """Runs fn(client, items) on one thread per client, all released together; returns the wall time."""
    return in_threads(len(work), lambda client: fn(client, work[client]))


def baseline(encoded: list[list[object]], folder: Path) -> float:
    """The least work that stores a chunk durably under its name: decode, hash, write, fsync the file and its folder."""

    def work(client: int, items: list[object]) -> None:
        mine = folder / str(client)  # one folder per client, as the product keeps one per upload
        mine.mkdir()
        for index, text in enumerate(items):
            data = decode_like_the_product(text)  # type: ignore[arg-type]
            hashlib.sha256(data).hexdigest()
            with open(mine / f"{index:06d}", "wb") as sink:
                sink.write(data)
                sink.flush()
                os.fsync(sink.fileno())
            handle = os.open(mine, os.O_RDONLY)  # the new name is durable only once its folder is
            try:
                os.fsync(handle)
            finally:
                os.close(handle)

    return run_threads(encoded, work)


def served_pid() -> int:
    """The pid of the uvicorn child that common.served() started (for py-spy)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"uvicorn" in cmdline:
                return int(entry.name)
    raise SystemExit("no served uvicorn child found")  # common.served() runs one uvicorn process by default


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of PID so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def profiled(path: str) -> Iterator[None]:
    """py-spy records the server (all threads, on-CPU samples) into PATH while the block runs."""
    spy = subprocess.Popen(["py-spy", "record", "-p", str(served_pid()), "-r", "200", "--threads", "-f", "raw", "-o", path])
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def issue_baseline(encoded: list[list[object]], folder: Path) -> float:
    """The issue's baseline as it was measured (stdlib strict base64 decode, sha256, write; no fsync), same concurrency."""

    def work(client: int, items: list[object]) -> None:
        for index, text in enumerate(items):
            data = binascii.a2b_base64(text, strict_mode=True)  # type: ignore[arg-type]
            hashlib.sha256(data).hexdigest()
            with open(folder / f"{client}-{index:06d}", "wb") as sink:
                sink.write(data)

    return run_threads(encoded, work)


def prepare(chunks: list[list[bytes]], form: str) -> list[list[object]]:
    """The request bodies, built once: the JSON form's base64 and encoding are not client work under the clock."""
    if form == "json":
        return [[json.dumps({"chunk_index": i, "data": base64.b64encode(c).decode()}).encode() for i, c in enumerate(c_)] for c_ in chunks]
    return [list(mine) for mine in chunks]


def ingest(base: str, key: str, bodies: list[list[object]], digests: list[list[str]], form: str) -> tuple[float, list[str]]:
    import httpx

    upload_ids: list[str] = [""] * len(bodies)

    def send(client: int, items: list[object]) -> None:
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60) as http:
            upload_id = ""
            for index, body in enumerate(items):
                first = {"total_chunks": len(items), "profile": "bench", "content_type": "application/octet-stream"}
                if form == "json":
                    # The envelope is spliced in front of the pre-encoded data: the client does no JSON work per chunk.
                    envelope = json.dumps({"upload_id": upload_id} if upload_id else first).encode()
                    content = envelope[:-1] + b", " + body[1:]  # type: ignore[index]
                    response = http.post("/v1/memory/ingest", content=content, headers={"Content-Type": "application/json"})
                else:
                    params = {"chunk_index": index, **({"upload_id": upload_id} if upload_id else first)}
                    headers = {"Content-Type": "application/octet-stream", "X-Chunk-Sha256": digests[client][index]}
                    response = http.post("/v1/memory/ingest", params=params, content=body, headers=headers)  # type: ignore[arg-type]
                if response.status_code not in (200, 201):
                    raise SystemExit(f"ingest answered {response.status_code}: {response.text[:500]}")
                upload_id = response.json()["upload_id"]
            upload_ids[client] = upload_id

    seconds = run_threads(bodies, send)
    return seconds, upload_ids


def check(base: str, key: str, upload_ids: list[str], chunks: list[list[bytes]]) -> None:
    import httpx

    for upload_id, mine in zip(upload_ids, chunks, strict=True):
        answer = httpx.get(f"{base}/v1/memory/status", params={"upload_id": upload_id}, headers={"x-api-key": key}, timeout=30).json()
        [upload] = answer["uploads"]
        expected = sum(len(c) for c in mine)
        if upload["bytes_received"] != expected or upload["received_chunks"] != len(mine) or upload["state"] != "assembling":
            raise SystemExit(f"upload {upload_id} is not complete: {upload}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=12, help="chunks per client (each client sends its own upload)")
    parser.add_argument("--chunk-mib", type=int, default=4)
    parser.add_argument("--forms", default="json,raw")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    forms = [f for f in args.forms.split(",") if f]

    env = bench_env(AION_LOG_LEVEL="WARNING")
    key = create_api_key(env, "memory.writer,memory.reader")
    chunks = make_chunks(args.clients, args.chunks, args.chunk_mib * MiB)
    total_mib = sum(len(c) for mine in chunks for c in mine) / MiB
    encoded: list[list[object]] = [[base64.b64encode(c) for c in mine] for mine in chunks]

    try:
        import httpx

        load = f"{args.clients} clients, {total_mib:.0f} MiB in {args.chunk_mib} MiB chunks"
        baseline_rates: list[float] = []
        issue_rates: list[float] = []
        durable_ratios: dict[str, list[float]] = {form: [] for form in forms}
        rates: dict[str, list[float]] = {form: [] for form in forms}
        ratios: dict[str, list[float]] = {form: [] for form in forms}
        with served(env) as base:
            created = httpx.post(
                f"{base}/v1/memory/profile", json={"name": "bench", "pipeline": ["extract"]}, headers={"x-api-key": key}, timeout=30
            )
            if created.status_code not in (200, 201):
                raise SystemExit(f"profile: {created.status_code} {created.text[:300]}")
            digests = [[hashlib.sha256(c).hexdigest() for c in mine] for mine in chunks]
            bodies = {form: prepare(chunks, form) for form in forms}
            for form in forms:  # warm-up: first-request imports, connections
                ingest(base, key, [mine[:2] for mine in bodies[form]], digests, form)
            # Rounds alternate the baseline and each form, so a neighbour's load on this shared machine
            # weighs on both sides of each ratio; the row reports the median round.
            server = served_pid()
            profile = os.environ.get("AION_BENCH_PROFILE", "")
            for form in forms if profile else ():  # profiling only: one run per form under py-spy, no rows
                with profiled(f"{profile}.{form}"):
                    ingest(base, key, bodies[form], digests, form)
            for _ in range(0 if profile else args.rounds):
                with tempfile.TemporaryDirectory(prefix="aion-bench-baseline-", dir=env["AION_VAR_DIR"]) as folder:
                    client_cpu = time.process_time()
                    baseline_rate = total_mib / baseline(encoded, Path(folder))
                    client_cpu = time.process_time() - client_cpu
                print(
                    f"[memory_ingest] durable baseline: {baseline_rate:,.0f} MiB/s; "
                    f"CPU per chunk {client_cpu / sum(map(len, chunks)) * 1000:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
                baseline_rates.append(baseline_rate)
                with tempfile.TemporaryDirectory(prefix="aion-bench-issue-baseline-", dir=env["AION_VAR_DIR"]) as folder:
                    issue_rate = total_mib / issue_baseline(encoded, Path(folder))
                issue_rates.append(issue_rate)
                for form in forms:
                    server_cpu, client_cpu = cpu_seconds(server), time.process_time()
                    seconds, upload_ids = ingest(base, key, bodies[form], digests, form)
                    server_cpu, client_cpu = cpu_seconds(server) - server_cpu, time.process_time() - client_cpu
                    count = sum(len(mine) for mine in chunks)
                    print(
                        f"[memory_ingest] {form}: {total_mib / seconds:,.0f} MiB/s; CPU per chunk: server "
                        f"{server_cpu / count * 1000:.1f} ms, clients {client_cpu / count * 1000:.1f} ms; wall per chunk "
                        f"{seconds / count * 1000:.1f} ms over {args.clients} clients",
                        file=sys.stderr,
                        flush=True,
                    )
                    check(base, key, upload_ids, chunks)
                    rates[form].append(total_mib / seconds)
                    ratios[form].append(total_mib / seconds / issue_rate)
                    durable_ratios[form].append(total_mib / seconds / baseline_rate)
    finally:
        shutil.rmtree(env["AION_VAR_DIR"], ignore_errors=True)  # every round's chunks: gigabytes over a run
    for form in forms:
        if not rates[form]:
            continue
        label = "JSON base64" if form == "json" else "raw octet-stream"
        row(
            f"memory ingest over HTTP, {label} ({load}, median of {args.rounds} rounds)",
            f"{statistics.median(rates[form]):,.0f} MiB/s",
            f"binascii decode+sha256+write, {args.clients} threads: {statistics.median(issue_rates):,.0f} MiB/s "
            f"(stricter: pybase64 decode+sha256+write+fsync file and folder {statistics.median(baseline_rates):,.0f} MiB/s, "
            f"ratio {statistics.median(durable_ratios[form]):.2f})",
            statistics.median(ratios[form]),
            TARGET,
        )


if __name__ == "__main__":
    main()
