"""Benchmark: outbound webhook delivery throughput vs plain signed POSTs from one process.

Creates N deliveries (one outbox event each, one endpoint) and sends them with the real engine
(``hooks.services.deliver``: lease, sign, SSRF-checked pinned POST, attempt row, status update),
then sends the same N bodies as plain signed ``httpx`` POSTs (sign + POST, nothing recorded).
Both open one connection per request, to the same threaded receiver on 127.0.0.1.

    .venv/bin/python bench/webhook_delivery.py [N]

Prints one Markdown row for docs/performance.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
os.environ["AION_VAR_DIR"] = tempfile.mkdtemp(prefix="aion-bench-")
os.environ["AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "KAFKA_BOOTSTRAP_SERVERS"):
    os.environ.pop(name, None)


def start_receiver() -> tuple[object, str]:
    """A threaded 200-OK receiver on 127.0.0.1 (TCP_NODELAY, so Nagle does not add 40 ms a request)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main(count: int) -> str:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import httpx
    from django.db import transaction
    from django.utils import timezone

    from aion.auth.principal import system_principal
    from aion.outbox import publish
    from hooks import signing
    from hooks.models import WebhookDelivery
    from hooks.services import create_endpoint, deliver

    server, base_url = start_receiver()
    try:
        endpoint, secret = create_endpoint(tenant_id="bench", url=f"{base_url}/hook", event_types=["*"], actor=system_principal("bench"))
        # on_commit enqueue is skipped: the benchmark sends synchronously.
        with transaction.atomic():
            for i in range(count):
                publish("kernel.proposals", str(i), {"i": i, "pad": "x" * 200}, event_type="kernel.proposal.applied", tenant_id="bench")
            transaction.get_connection().run_on_commit = []
        ids = list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("pk", flat=True))
        assert len(ids) == count

        now = timezone.now()
        started = time.perf_counter()
        for pk in ids:
            result = deliver(pk, now=now, schedule_retry=False)
            assert result is not None and result.status == "succeeded"
        engine_seconds = time.perf_counter() - started

        bodies = [f'{{"i":{i},"pad":"{"x" * 200}"}}'.encode() for i in range(count)]
        # The same connection pattern as the engine: one client, a new connection per request.
        plain = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=10)
        started = time.perf_counter()
        for body in bodies:
            headers = {"content-type": "application/json", "x-omerta-signature": signing.sign(body, [secret])}
            response = plain.post(f"{base_url}/plain", content=body, headers=headers)
            assert response.status_code == 200
        plain_seconds = time.perf_counter() - started
    finally:
        server.shutdown()  # type: ignore[attr-defined]

    engine_rate = count / engine_seconds
    plain_rate = count / plain_seconds
    date = time.strftime("%Y-%m-%d")
    return (
        f"| webhook_delivery (N={count}, SQLite) | {engine_rate:.0f} deliveries/s | "
        f"{plain_rate:.0f} plain signed POSTs/s | {engine_rate / plain_rate:.2f} | {date} |"
    )


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
