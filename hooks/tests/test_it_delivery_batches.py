"""The delivery engine in batches: one claim per batch, pooled connections pinned to approved addresses,
the lease (no double send across workers), and the per-process secret cache.

The receivers here are real threaded HTTP servers on loopback that also record which local address a
request reached and from which client port (one port = one connection). Where a test needs a host
name to resolve to a chosen address, ``socket.getaddrinfo`` is replaced by a fake resolver for names
ending in ``.test`` (the fake: no real DNS server can be pointed at by the test); every other name,
and every connect, goes to the real one.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from hooks.choices import DeliveryStatus
from hooks.models import DeliveryAttempt, WebhookDelivery
from hooks.services import close_pinned_clients, deliver, deliver_batch, enqueue_deliveries, rotate_endpoint_secret
from hooks.tests.helpers import documented_verify_signature, make_endpoint, publish_event


@dataclass
class Seen:
    address: str  # the local address the request reached
    client_port: int  # one port = one TCP connection
    host: str
    delivery: str


@dataclass
class Receiver:
    """One port, served on each of ADDRESSES; DRIP_SECONDS > 0 trickles the body out over that long."""

    addresses: tuple[str, ...] = ("127.0.0.1",)
    drip_seconds: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.seen.append(Seen(self.connection.getsockname()[0], self.client_address[1],
                                       self.headers["Host"], self.headers["x-omerta-delivery"]))  # fmt: skip
                body = b"{}" * 4
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(owner.drip_seconds / len(body))

            def log_message(self, *args: Any) -> None:
                pass

        port = 0
        for address in self.addresses:
            server = ThreadingHTTPServer((address, port), Handler)
            server.daemon_threads = True
            port = server.server_address[1]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        return self

    @property
    def port(self) -> int:
        return int(self.servers[0].server_address[1])

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver(addresses=("127.0.0.1", "127.0.0.2")).start()
    yield server
    close_pinned_clients()
    server.stop()


@pytest.fixture()
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The fake resolver: NAME.test -> the address in this dict (see the module docstring)."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def pending_ids() -> list[int]:
    return list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_batch_is_one_claim_and_one_write_and_reuses_one_connection(receiver, dns, django_assert_max_num_queries):
    dns["receiver.test"] = "127.0.0.1"
    make_endpoint(f"http://receiver.test:{receiver.port}/hook")
    for _ in range(10):
        publish_event()
    # claim (+ SET LOCAL on PostgreSQL), endpoints, attempts INSERT, status UPDATE, + the two savepoint pairs
    with django_assert_max_num_queries(10):
        sent = deliver_batch(pending_ids())
    assert [d.status for d in sent] == [DeliveryStatus.SUCCEEDED] * 10 and all(d.attempts == 1 for d in sent)
    assert len(receiver.seen) == 10 and len({s.client_port for s in receiver.seen}) == 1  # one kept-alive connection
    assert {s.host for s in receiver.seen} == {f"receiver.test:{receiver.port}"}
    assert DeliveryAttempt.objects.filter(succeeded=True, number=1).count() == 10
    row = WebhookDelivery.objects.get(pk=sent[0].pk)
    assert row.last_attempt_at == sent[0].last_attempt_at and row.locked_until is None and row.last_status_code == 200


@pytest.mark.django_db
def test_a_batch_skips_deliveries_not_due_or_leased_by_another_sender(receiver):
    make_endpoint(f"http://127.0.0.1:{receiver.port}/hook")
    for _ in range(4):
        publish_event()
    now = timezone.now()
    leased, later, *due = pending_ids()
    WebhookDelivery.objects.filter(pk=leased).update(locked_until=now + timedelta(seconds=30))
    WebhookDelivery.objects.filter(pk=later).update(next_attempt_at=now + timedelta(seconds=30))
    sent = deliver_batch([leased, later, *due], now=now)
    assert sorted(d.pk for d in sent) == sorted(due)
    assert sorted(s.delivery for s in receiver.seen) == sorted(str(d.delivery_id) for d in sent)
    assert deliver_batch(None, now=now) == []  # nothing else is due


@pytest.mark.django_db
def test_after_a_dns_change_the_old_connection_is_not_reused(receiver, dns):
    dns["receiver.test"] = "127.0.0.1"
    make_endpoint(f"http://receiver.test:{receiver.port}/hook")
    publish_event()
    publish_event()
    first, second = pending_ids()
    assert deliver(first).status == DeliveryStatus.SUCCEEDED
    dns["receiver.test"] = "127.0.0.2"
    assert deliver(second).status == DeliveryStatus.SUCCEEDED
    assert [s.address for s in receiver.seen] == ["127.0.0.1", "127.0.0.2"]


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["dns-to-metadata", "private-networks-off"])
def test_a_pooled_connection_is_not_used_once_the_guard_refuses_the_destination(receiver, dns, settings, change):
    """Reuse happens only right after the guard approved the same address: a refusal sends nothing."""
    dns["receiver.test"] = "127.0.0.1"
    make_endpoint(f"http://receiver.test:{receiver.port}/hook")
    publish_event()
    publish_event()
    first, second = pending_ids()
    assert deliver(first).status == DeliveryStatus.SUCCEEDED  # a kept-alive connection to 127.0.0.1 is pooled now
    if change == "dns-to-metadata":
        dns["receiver.test"] = "169.254.169.254"
    else:
        settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    refused = deliver(second)
    assert refused.status == DeliveryStatus.RETRYING and refused.last_error.startswith("refused:")
    assert len(receiver.seen) == 1


@pytest.mark.django_db
def test_two_host_names_on_one_address_never_share_a_connection(receiver, dns):
    """One client per host name: a TLS connection verified for one name never carries another's requests."""
    dns["a.test"] = dns["b.test"] = "127.0.0.1"
    make_endpoint(f"http://a.test:{receiver.port}/hook")
    make_endpoint(f"http://b.test:{receiver.port}/hook")
    for _ in range(3):
        publish_event()
    deliver_batch(pending_ids())
    ports = {host: {s.client_port for s in receiver.seen if s.host.startswith(host)} for host in ("a.test", "b.test")}
    assert len(ports["a.test"]) == 1 and len(ports["b.test"]) == 1 and ports["a.test"] != ports["b.test"]
    assert len(receiver.seen) == 6


@pytest.mark.django_db
def test_a_batch_releases_what_it_cannot_send_inside_its_lease(settings):
    """The first send trickles past the timeout budget: the rest are released unsent, due again at once."""
    settings.AION_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.AION_WEBHOOK_LEASE_MARGIN_SECONDS = 1  # a lease of 3 x 1 s + 1 s; a send needs 1.5 s left
    slow = Receiver(drip_seconds=3.2).start()
    try:
        make_endpoint(f"http://127.0.0.1:{slow.port}/hook")
        for _ in range(3):
            publish_event()
        first, *rest = pending_ids()
        sent = deliver_batch([first, *rest])
    finally:
        close_pinned_clients()
        slow.stop()
    assert [d.pk for d in sent] == [first] and sent[0].status == DeliveryStatus.SUCCEEDED
    assert len(slow.seen) == 1
    for row in WebhookDelivery.objects.filter(pk__in=rest):
        assert row.status == DeliveryStatus.PENDING and row.locked_until is None and row.attempts == 0


@pytest.mark.django_db
def test_a_rotated_secret_signs_at_once_though_the_old_one_was_cached(receiver):
    endpoint, old_secret = make_endpoint(f"http://127.0.0.1:{receiver.port}/hook")
    publish_event()
    publish_event()
    first, second = pending_ids()
    now = timezone.now()
    deliver(first, now=now)  # decrypts (and caches) the old secret
    new_secret = rotate_endpoint_secret(endpoint, actor="test", grace_hours=0, now=now)
    deliver(second, now=now)
    body = WebhookDelivery.objects.get(pk=second)
    from hooks.services import delivery_body, delivery_headers

    body.endpoint.refresh_from_db()
    header = delivery_headers(body, delivery_body(body), now)["x-omerta-signature"]
    verify = documented_verify_signature()
    assert verify(header, delivery_body(body), new_secret, now=now.timestamp())
    assert not verify(header, delivery_body(body), old_secret, now=now.timestamp())
    assert header.count("v1=") == 1


@pytest.mark.django_db
def test_enqueued_deliveries_go_out_through_the_acks_late_batch_task(receiver):
    """45 ids are three ``hooks.send_deliveries`` tasks (20, 20, 5); eager Celery runs them here."""
    from aion.celery import app
    from hooks import tasks

    assert tasks.send_deliveries.acks_late is True and tasks.send_deliveries.reject_on_worker_lost is True
    make_endpoint(f"http://127.0.0.1:{receiver.port}/hook")
    for _ in range(45):
        publish_event()
    app.conf.task_always_eager = True
    try:
        enqueue_deliveries(pending_ids())
    finally:
        app.conf.task_always_eager = False
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 45
    assert len({s.delivery for s in receiver.seen}) == 45


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_on_postgresql_never_send_a_delivery_twice(receiver):
    """Six workers race over one backlog (four drain it, two claim every id at once): one send each."""
    make_endpoint(f"http://127.0.0.1:{receiver.port}/hook")
    for _ in range(60):
        publish_event()
    ids = pending_ids()
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def worker(drain: bool) -> None:
        try:
            start.wait(timeout=30)
            deadline = time.monotonic() + 60
            if drain:
                while deliver_batch(None, limit=5) and time.monotonic() < deadline:
                    pass
            else:
                deliver_batch(ids)
        except BaseException as exc:  # re-raised below
            errors.append(exc)
        finally:
            close_pinned_clients()
            connection.close()

    threads = [threading.Thread(target=worker, args=(i < 4,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not errors, errors
    sent = [s.delivery for s in receiver.seen]
    assert len(sent) == len(set(sent)) == 60
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED, attempts=1).count() == 60
    assert DeliveryAttempt.objects.count() == 60
