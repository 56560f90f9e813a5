"""Memory ingest throughput (MiB/s) through the HTTP API with 4 MiB chunks, versus a one-process baseline.

The API side: a real threaded WSGI server on 127.0.0.1 serving the full Django stack (auth, RBAC,
rate limit, JSON parsing, base64 decode, sha256, chunk claim + write through the storage layer,
progress update), fed by one ``httpx`` client sending base64 chunks in order. It reports the
chunk phase alone and the chunk phase plus the assembly (``memory.assemble_upload``: streaming
the chunks into one object with its sha256), run in this process as a worker would.
The baseline: in one process, base64-decode the same chunks, sha256 them and write them to a file.

    .venv/bin/python bench/memory_ingest.py [--mib 128] [--chunk-mib 4]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
os.environ.setdefault("AION_VAR_DIR", tempfile.mkdtemp(prefix="aion-bench-"))
os.environ.setdefault("AION_LOG_LEVEL", "WARNING")
os.environ.setdefault("AION_RATE_LIMIT_INGEST", "1000000/60")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402

MiB = 1024 * 1024


def serve() -> tuple[str, object]:
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def baseline(encoded: list[str], folder: Path) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with open(folder / "baseline.bin", "wb") as sink:
        for text in encoded:
            data = base64.b64decode(text, validate=True)
            digest.update(data)
            sink.write(data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--chunk-mib", type=int, default=4)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)

    from aion.testing.factories import make_api_key
    from memory import services
    from memory.models import Upload

    chunk_bytes = args.chunk_mib * MiB
    count = max(1, args.mib // args.chunk_mib)
    total_mib = count * chunk_bytes / MiB
    block = os.urandom(chunk_bytes)
    chunks = [i.to_bytes(4, "big") + block[4:] for i in range(count)]
    encoded = [base64.b64encode(c).decode() for c in chunks]
    services.save_profile("bench", "bench", {"pipeline": ["extract"]}, actor=None)
    raw, _ = make_api_key(["memory.writer", "memory.reader"], "bench")

    base_seconds = baseline(encoded, Path(os.environ["AION_VAR_DIR"]))

    url, server = serve()
    headers = {"x-api-key": raw, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        started = time.perf_counter()
        upload_id = None
        for index, text in enumerate(encoded):
            body = {"chunk_index": index, "data": text, "content_type": "application/octet-stream"}
            body |= {"upload_id": upload_id} if upload_id else {"total_chunks": count, "profile": "bench"}
            response = http.post("/v1/memory/ingest", json=body)
            assert response.status_code in (200, 201), response.text
            upload_id = response.json()["upload_id"]
        chunk_seconds = time.perf_counter() - started
    assert services.assemble_upload(upload_id)
    total_seconds = time.perf_counter() - started
    upload = Upload.objects.get(pk=upload_id)
    assert upload.size_bytes == count * chunk_bytes
    assert upload.checksum == hashlib.sha256(b"".join(chunks)).hexdigest()
    server.shutdown()  # type: ignore[attr-defined]

    base = total_mib / base_seconds
    api = total_mib / chunk_seconds
    e2e = total_mib / total_seconds
    date = time.strftime("%Y-%m-%d")
    label = f"{total_mib:.0f} MiB, {args.chunk_mib} MiB chunks, SQLite + filesystem"
    baseline_cell = f"decode+hash+write {base:,.0f} MiB/s"
    print(f"| memory_ingest HTTP chunks ({label}) | {api:,.0f} MiB/s | {baseline_cell} | {api / base:.2f} | {date} |")
    print(f"| memory_ingest HTTP chunks + assembly ({label}) | {e2e:,.0f} MiB/s | {baseline_cell} | {e2e / base:.2f} | {date} |")


if __name__ == "__main__":
    main()
