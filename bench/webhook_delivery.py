"""Outbound webhook deliveries (the real engine) vs a plain signed-POST loop, same concurrency, same receiver.

The receiver is a ``ThreadingHTTPServer`` answering 200 ``{}``, in its own process (a receiver is
another machine; sharing our GIL would hide the sender's cost on both sides).

- Baseline: ``AION_BENCH_CONNECTIONS`` threads (default 8), each a loop of signed POSTs
  (serialise, HMAC-sign, POST, check 200) through its own keep-alive ``httpx`` client.
- Engine, batch: the same number of threads, each running what a Celery worker process runs for a
  ``hooks.send_deliveries`` task (the fan-out of one event and the beat sweep enqueue chunks of ids):
  ``hooks.services.deliver_batch`` over chunks of ``DELIVERY_BATCH_SIZE`` ids: lease claim (one
  conditional UPDATE ... RETURNING), endpoint read, sign, SSRF check + pinned POST on a pooled
  connection, attempt rows (bulk) and status updates, in the configured database.
- Engine, one by one: the same threads each calling ``hooks.services.deliver(pk)`` per delivery
  (what one ``hooks.send_delivery`` task does), reported as a second row.

The baseline runs before and after the engine; its rate is the mean of both runs.

    AION_BENCH_CONFIG=embedded|pg .venv/bin/python bench/webhook_delivery.py [N]
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import PY, bench_env, connections, in_threads, row, setup_django

RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def start_receiver() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([PY, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline().strip())
    return process, f"http://127.0.0.1:{port}"


def run_threads(work: queue.Queue[object], threads: int, handle: object) -> float:
    """THREADS threads drain WORK, calling HANDLE(item); returns the elapsed seconds."""
    from django.db import connection

    connection.close()  # the main thread's connection goes back to the pool while the threads run

    def drain(_: int) -> None:
        try:
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                handle(item)  # type: ignore[operator]
        finally:
            connection.close()

    return in_threads(threads, drain)


def main(count: int) -> None:
    threads = connections()
    # One database connection per sender thread, as each Celery worker process has its own.
    env = bench_env(AION_DB_POOL_SIZE=str(threads + 2))
    setup_django(env)

    import httpx
    from django.db import transaction

    from aion.auth.principal import system_principal
    from aion.outbox import publish
    from hooks import signing
    from hooks.choices import DeliveryStatus
    from hooks.models import WebhookDelivery
    from hooks.services import DELIVERY_BATCH_SIZE, create_endpoint, deliver, deliver_batch

    receiver, base_url = start_receiver()
    try:
        endpoint, secret = create_endpoint(tenant_id="bench", url=f"{base_url}/hook", event_types=["*"], actor=system_principal("bench"))
        with transaction.atomic():
            for i in range(2 * count):
                publish("kernel.proposals", str(i), {"i": i, "pad": "x" * 200}, event_type="kernel.proposal.applied", tenant_id="bench")
            # The bench drives the engine itself: no Celery enqueue on commit.
            transaction.get_connection().run_on_commit = []
        ids = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk").values_list("pk", flat=True))
        assert len(ids) == 2 * count
        envelopes = [dict(envelope, event_id=f"plain-{i}") for i, envelope in enumerate(
            WebhookDelivery.objects.filter(pk__in=ids[:count]).values_list("payload", flat=True))]  # fmt: skip

        local = threading.local()

        def plain_post(envelope: object) -> None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(timeout=10)
            body = json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "plain-loop",
                signing.SIGNATURE_HEADER: signing.sign(body, [secret]),
                signing.DELIVERY_HEADER: str(envelope["event_id"]),  # type: ignore[index]
                signing.EVENT_HEADER: "kernel.proposal.applied",
                signing.TENANT_HEADER: "bench",
            }
            response = client.post(f"{base_url}/plain", content=body, headers=headers)
            assert response.status_code == 200, response.status_code

        def plain_rate() -> float:
            work: queue.Queue[object] = queue.Queue()
            for envelope in envelopes:
                work.put(envelope)
            return count / run_threads(work, threads, plain_post)

        def batch(chunk: object) -> None:
            results = deliver_batch(chunk)  # type: ignore[arg-type]
            assert len(results) == len(chunk) and all(r.status == DeliveryStatus.SUCCEEDED for r in results)  # type: ignore[arg-type]

        def single(pk: object) -> None:
            result = deliver(pk)  # type: ignore[arg-type]
            assert result is not None and result.status == DeliveryStatus.SUCCEEDED

        plain_before = plain_rate()
        work: queue.Queue[object] = queue.Queue()
        for start in range(0, count, DELIVERY_BATCH_SIZE):
            work.put(ids[start : start + DELIVERY_BATCH_SIZE])
        batch_rate = count / run_threads(work, threads, batch)
        work = queue.Queue()
        for pk in ids[count:]:
            work.put(pk)
        single_rate = count / run_threads(work, threads, single)
        plain_after = plain_rate()
        sent = WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.SUCCEEDED, attempts=1).count()
        assert sent == 2 * count, f"{sent} of {2 * count} deliveries succeeded once"
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)

    plain = (plain_before + plain_after) / 2
    baseline = f"{plain:.0f} plain signed POSTs/s (keep-alive, {threads} threads; {plain_before:.0f} before, {plain_after:.0f} after)"
    row(f"Webhook deliveries, engine in batches of {DELIVERY_BATCH_SIZE}, {threads} workers, N={count}",
        f"{batch_rate:.0f} deliveries/s", baseline, batch_rate / plain, "≥ 0.7×")  # fmt: skip
    row(f"Webhook deliveries, engine one by one (`deliver(pk)`), {threads} workers, N={count}",
        f"{single_rate:.0f} deliveries/s", baseline, single_rate / plain, "")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
