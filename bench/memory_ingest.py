"""Memory ingest throughput (MiB/s) over HTTP with 4 MiB chunks, versus the same work in process.

The product side: the served product (``common.served()``: uvicorn, one process, as the Dockerfile
runs it), driven by ``--clients`` concurrent keep-alive ``httpx`` clients, each sending its own
upload of ``--chunks`` chunks in order (auth, RBAC, rate limit, body parsing, sha256, the chunk
claim and its durable write through the storage layer, progress update, response). Two forms:

  - ``json``: the compatible form, ``{"data": <base64>, ...}`` (a 5.6 MB body per 4 MiB chunk);
  - ``raw``: ``Content-Type: application/octet-stream``, the bytes as the body, the fields in the
    query string and the digest in ``X-Chunk-Sha256`` (see docs/memory.md).

The baseline, measured in the same run at the same concurrency (``--clients`` threads, the same
chunks): base64-decode each chunk (strict), sha256 it, write it to its own file and fsync it (the
durability an acknowledged chunk has in the product).

    AION_BENCH_CONFIG=embedded|pg .venv/bin/python bench/memory_ingest.py [--clients 4] [--chunks 12] [--forms json,raw]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import bench_env, create_api_key, row, served

MiB = 1024 * 1024
TARGET = ">= 0.5x"


def make_chunks(clients: int, chunks: int, chunk_bytes: int) -> list[list[bytes]]:
    """Every chunk differs (its first bytes), so a mix-up would change the checksums."""
    block = os.urandom(chunk_bytes)
    return [[(c * 100_000 + i).to_bytes(8, "big") + block[8:] for i in range(chunks)] for c in range(clients)]


def run_threads(work: list[list[object]], fn) -> float:  # type: ignore[no-untyped-def]
    """Runs fn(client, items) on one thread per client, all released together; returns the wall time."""
    barrier = threading.Barrier(len(work) + 1)
    errors: list[BaseException] = []

    def target(client: int) -> None:
        barrier.wait()
        try:
            fn(client, work[client])
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(c,)) for c in range(len(work))]
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


def baseline(encoded: list[list[object]], folder: Path) -> float:
    def work(client: int, items: list[object]) -> None:
        for index, text in enumerate(items):
            data = binascii.a2b_base64(text, strict_mode=True)  # type: ignore[arg-type]
            hashlib.sha256(data).hexdigest()
            with open(folder / f"{client}-{index}.bin", "wb") as sink:
                sink.write(data)
                sink.flush()
                os.fsync(sink.fileno())

    return run_threads(encoded, work)


def ingest(base: str, key: str, chunks: list[list[bytes]], form: str) -> tuple[float, list[str]]:
    import httpx

    upload_ids: list[str] = [""] * len(chunks)
    if form == "json":
        bodies: list[list[object]] = [
            [json.dumps({"chunk_index": i, "data": base64.b64encode(c).decode()}).encode() for i, c in enumerate(mine)] for mine in chunks
        ]
    else:
        bodies = [list(mine) for mine in chunks]
    digests = [[hashlib.sha256(c).hexdigest() for c in mine] for mine in chunks]

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
    args = parser.parse_args()
    forms = [f for f in args.forms.split(",") if f]

    env = bench_env(AION_LOG_LEVEL="WARNING")
    key = create_api_key(env, "memory.writer,memory.reader")
    chunks = make_chunks(args.clients, args.chunks, args.chunk_mib * MiB)
    total_mib = sum(len(c) for mine in chunks for c in mine) / MiB
    encoded: list[list[object]] = [[base64.b64encode(c) for c in mine] for mine in chunks]

    with tempfile.TemporaryDirectory(prefix="aion-bench-baseline-", dir=env["AION_VAR_DIR"]) as folder:
        base_seconds = baseline(encoded, Path(folder))
    del encoded
    base_rate = total_mib / base_seconds

    import httpx

    load = f"{args.clients} clients, {total_mib:.0f} MiB in {args.chunk_mib} MiB chunks"
    with served(env) as base:
        created = httpx.post(
            f"{base}/v1/memory/profile", json={"name": "bench", "pipeline": ["extract"]}, headers={"x-api-key": key}, timeout=30
        )
        if created.status_code not in (200, 201):
            raise SystemExit(f"profile: {created.status_code} {created.text[:300]}")
        for form in forms:
            ingest(base, key, [mine[:2] for mine in chunks], form)  # warm-up: first-request imports, connections
            seconds, upload_ids = ingest(base, key, chunks, form)
            check(base, key, upload_ids, chunks)
            rate = total_mib / seconds
            label = "JSON base64" if form == "json" else "raw octet-stream"
            row(
                f"memory ingest over HTTP, {label} ({load})",
                f"{rate:,.0f} MiB/s",
                f"decode+sha256+write+fsync, {args.clients} threads: {base_rate:,.0f} MiB/s",
                rate / base_rate,
                TARGET,
            )


if __name__ == "__main__":
    main()
