"""The outbound delivery engine against a real threaded HTTP receiver on 127.0.0.1, with time injected."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from aion.models import OutboxEvent
from aion.testing.factories import OTHER_TENANT, TENANT
from hooks.choices import DeliveryStatus
from hooks.models import WebhookDelivery, WebhookEndpoint
from hooks.services import deliver, due_delivery_ids, rotate_endpoint_secret
from hooks.tests.helpers import documented_verify_signature, make_endpoint, publish_event

pytestmark = pytest.mark.django_db


def failures_metric(endpoint: WebhookEndpoint) -> float:
    return REGISTRY.get_sample_value("webhook_failures_total", {"endpoint": str(endpoint.pk), "tenant": endpoint.tenant_id}) or 0.0


def one_delivery() -> WebhookDelivery:
    return WebhookDelivery.objects.get()


def test_an_event_creates_deliveries_for_matching_enabled_endpoints_of_its_tenant(http_server):
    wildcard, _ = make_endpoint(http_server.url("/a"), ["kernel.proposal.*"])
    everything, _ = make_endpoint(http_server.url("/b"), ["*"])
    make_endpoint(http_server.url("/c"), ["memory.upload.completed"])
    disabled, _ = make_endpoint(http_server.url("/d"), ["*"])
    WebhookEndpoint.objects.filter(pk=disabled.pk).update(enabled=False)
    make_endpoint(http_server.url("/e"), ["*"], tenant=OTHER_TENANT)

    event = publish_event("kernel.proposal.applied")
    deliveries = WebhookDelivery.objects.order_by("endpoint_id")
    assert [d.endpoint_id for d in deliveries] == [wildcard.pk, everything.pk]
    for delivery in deliveries:
        assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
        assert str(delivery.event_id) == str(event.event_id) and delivery.event_type == "kernel.proposal.applied"
        assert delivery.payload == event.envelope
    # audit events and our own outcome events are never delivered, even to "*"
    assert WebhookDelivery.objects.filter(event_type__startswith="audit.").count() == 0


def test_a_delivery_is_a_signed_json_post_the_documented_helper_verifies(http_server):
    _endpoint, secret = make_endpoint(http_server.url("/hook"))
    publish_event()
    now = timezone.now()
    delivery = deliver(one_delivery().pk, now=now)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    (request,) = http_server.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-omerta-delivery"] == str(delivery.delivery_id)
    assert request.headers["x-omerta-event"] == "kernel.proposal.applied"
    assert request.headers["x-tenant-id"] == TENANT
    assert json.loads(request.body) == delivery.payload
    verify = documented_verify_signature()
    assert verify(request.headers["x-omerta-signature"], request.body, secret)
    assert not verify(request.headers["x-omerta-signature"], request.body + b" ", secret)
    assert not verify(request.headers["x-omerta-signature"], request.body, "whsec_wrong")
    attempt = delivery.attempt_log.get()
    assert attempt.status_code == 200 and attempt.succeeded and attempt.latency_ms > 0


def test_fails_n_times_then_succeeds_on_the_backoff_schedule(http_server, settings):
    settings.AION_WEBHOOK_BACKOFF_SECONDS = [10, 60, 300, 1800]
    http_server.respond(500, {"error": "boom"}, times=3)
    make_endpoint(http_server.url("/flaky"))
    publish_event()
    pk = one_delivery().pk
    now = timezone.now()
    for attempt, base in enumerate([10, 60, 300], start=1):
        delivery = deliver(pk, now=now)
        assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == attempt
        wait = (delivery.next_attempt_at - now).total_seconds()
        assert base <= wait <= base * 1.1, (attempt, wait)  # the schedule plus at most 10 % jitter
        assert deliver(pk, now=now + timedelta(seconds=base - 1)) is None  # not due yet: nothing sent
        now = delivery.next_attempt_at
    delivery = deliver(pk, now=now)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 4
    assert len(http_server.requests) == 4
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 500, 500, 200]
    assert delivery.attempt_log.first().response_excerpt == '{"error": "boom"}'
    # every attempt carries the same delivery id, so the receiver can dedupe
    assert len({r.headers["x-omerta-delivery"] for r in http_server.requests}) == 1


def test_five_failures_mark_the_delivery_failed_count_the_metric_and_publish(http_server):
    http_server.default = (500, {"error": "down"}, {})
    endpoint, _ = make_endpoint(http_server.url("/down"))
    publish_event()
    before = failures_metric(endpoint)
    pk = one_delivery().pk
    now = timezone.now()
    for _ in range(5):
        delivery = deliver(pk, now=now)
        now = delivery.next_attempt_at or now
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 5 and delivery.next_attempt_at is None
    assert failures_metric(endpoint) == before + 1
    assert deliver(pk, now=now + timedelta(days=1)) is None
    assert len(http_server.requests) == 5
    event = OutboxEvent.objects.get(topic="aion.webhooks.deliveries")
    assert event.event_type == "webhook.delivery.failed"
    assert event.envelope["data"]["delivery_id"] == str(delivery.delivery_id)


def test_a_response_excerpt_is_the_first_kib(http_server):
    http_server.respond(500, b"x" * 5000)
    make_endpoint(http_server.url("/big"))
    publish_event()
    delivery = deliver(one_delivery().pk)
    assert len(delivery.attempt_log.get().response_excerpt) == 1024


def test_410_disables_the_endpoint(http_server):
    http_server.respond(410)
    endpoint, _ = make_endpoint(http_server.url("/gone"))
    publish_event()
    delivery = deliver(one_delivery().pk)
    assert delivery.status == DeliveryStatus.FAILED
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "410" in endpoint.disabled_reason
    assert OutboxEvent.objects.filter(event_type="webhook.endpoint.disabled").count() == 1
    publish_event()  # no new delivery for a disabled endpoint
    assert WebhookDelivery.objects.count() == 1


def test_a_pending_delivery_of_a_disabled_endpoint_fails_without_sending(http_server):
    endpoint, _ = make_endpoint(http_server.url("/x"))
    publish_event()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="by hand")
    delivery = deliver(one_delivery().pk)
    assert delivery.status == DeliveryStatus.FAILED and "by hand" in delivery.last_error
    assert http_server.requests == []


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(http_server, status):
    http_server.respond(status, {}, {"Retry-After": "120"})
    make_endpoint(http_server.url("/busy"))
    publish_event()
    now = timezone.now()
    delivery = deliver(one_delivery().pk, now=now)
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at == now + timedelta(seconds=120)


def test_retry_after_http_date_is_honoured(http_server):
    now = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    http_server.respond(503, {}, {"Retry-After": format_datetime(now + timedelta(minutes=7), usegmt=True)})
    make_endpoint(http_server.url("/busy"))
    publish_event()
    delivery = deliver(one_delivery().pk, now=now)
    assert delivery.next_attempt_at == now + timedelta(minutes=7)


def test_a_redirect_is_a_failure_and_is_not_followed(http_server):
    http_server.respond(302, {}, {"Location": http_server.url("/elsewhere")})
    make_endpoint(http_server.url("/moved"))
    publish_event()
    delivery = deliver(one_delivery().pk)
    assert delivery.status == DeliveryStatus.RETRYING and "redirect" in delivery.last_error
    assert [r.path for r in http_server.requests] == ["/moved"]


def test_an_unreachable_receiver_is_a_failed_attempt(settings):
    from aion.testing.services import free_port

    make_endpoint(f"http://127.0.0.1:{free_port()}/nobody")
    publish_event()
    delivery = deliver(one_delivery().pk)
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.attempt_log.get().status_code is None and "Connect" in delivery.last_error


def test_private_destinations_are_refused_without_the_opt_in(http_server, settings):
    from aion.errors import InvalidInput

    _endpoint, _ = make_endpoint(http_server.url("/ssrf"))
    publish_event()
    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(InvalidInput) as refused:
        make_endpoint(http_server.url("/new"))
    assert refused.value.code == "unsafe-destination" and "url" in (refused.value.errors or {})
    with pytest.raises(InvalidInput):
        make_endpoint("http://169.254.169.254/latest/meta-data/")
    delivery = deliver(one_delivery().pk)
    assert delivery.status == DeliveryStatus.RETRYING and delivery.last_error.startswith("refused:")
    assert http_server.requests == []  # nothing left the process


def test_during_a_secret_rotation_both_signatures_are_sent(http_server):
    endpoint, old_secret = make_endpoint(http_server.url("/rot"))
    now = timezone.now()
    new_secret = rotate_endpoint_secret(endpoint, actor="test", grace_hours=2, now=now)
    publish_event()
    publish_event("kernel.proposal.rejected")
    first, second = WebhookDelivery.objects.order_by("id")
    verify = documented_verify_signature()
    deliver(first.pk, now=now + timedelta(hours=1))
    request = http_server.requests[-1]
    header = request.headers["x-omerta-signature"]
    assert header.count("v1=") == 2
    later = (now + timedelta(hours=1)).timestamp()
    assert verify(header, request.body, new_secret, now=later) and verify(header, request.body, old_secret, now=later)
    deliver(second.pk, now=now + timedelta(hours=3))  # after the grace: only the new secret signs
    request = http_server.requests[-1]
    header = request.headers["x-omerta-signature"]
    after = (now + timedelta(hours=3)).timestamp()
    assert header.count("v1=") == 1
    assert verify(header, request.body, new_secret, now=after) and not verify(header, request.body, old_secret, now=after)


def test_a_worker_killed_mid_send_loses_nothing(http_server):
    """A lease left by a dead sender blocks a second send until it lapses; then the sweep resends, same id."""
    make_endpoint(http_server.url("/crash"))
    publish_event()
    delivery = one_delivery()
    now = timezone.now()
    # the dead worker's claim: leased but never finished
    WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=now + timedelta(seconds=70))
    assert due_delivery_ids(now) == []
    assert deliver(delivery.pk, now=now) is None
    later = now + timedelta(seconds=71)
    assert due_delivery_ids(later) == [delivery.pk]
    assert deliver(delivery.pk, now=later).status == DeliveryStatus.SUCCEEDED
    assert http_server.requests[0].headers["x-omerta-delivery"] == str(delivery.delivery_id)


def test_the_send_task_acks_late_and_the_sweep_is_a_registered_job():
    from aion.jobs import REGISTRY as JOBS
    from hooks.tasks import retry_due_deliveries, send_delivery

    assert send_delivery.acks_late is True and send_delivery.reject_on_worker_lost is True
    assert retry_due_deliveries.name == "hooks.retry_due_deliveries"
    assert "hooks.retry_due_deliveries" in JOBS


def test_commit_enqueues_the_send_task(http_server, django_capture_on_commit_callbacks):
    """The delivery is created in the event's transaction and sent after commit (eager Celery here)."""
    from aion.celery import app

    make_endpoint(http_server.url("/eager"))
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            publish_event()
    finally:
        app.conf.task_always_eager = False
    assert one_delivery().status == DeliveryStatus.SUCCEEDED
    assert len(http_server.requests) == 1


def test_the_sweep_enqueues_due_deliveries(http_server):
    from aion.celery import app
    from hooks.tasks import retry_due_deliveries

    make_endpoint(http_server.url("/sweep"))
    publish_event()
    app.conf.task_always_eager = True
    try:
        assert retry_due_deliveries() == 1
    finally:
        app.conf.task_always_eager = False
    assert one_delivery().status == DeliveryStatus.SUCCEEDED


def test_outcome_events_match_the_topic_schema(http_server):
    import jsonschema
    from django.conf import settings

    http_server.respond(410)
    make_endpoint(http_server.url("/gone"))
    publish_event()
    deliver(one_delivery().pk)
    schema = json.loads((settings.BASE_DIR / "docs" / "events" / "aion.webhooks.deliveries.json").read_text())
    events = OutboxEvent.objects.filter(topic="aion.webhooks.deliveries").order_by("id")
    assert [e.event_type for e in events] == ["webhook.endpoint.disabled", "webhook.delivery.failed"]
    for event in events:
        jsonschema.validate(event.envelope, schema)
        assert event.envelope["data"]["status"] == "failed" and event.envelope["data"]["attempt"] == 1


def test_readiness_reports_the_webhook_backlog(http_server, client):
    make_endpoint(http_server.url("/x"))
    publish_event()
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=11))
    entry = client.get("/readyz").json()["dependencies"]["webhooks"]
    assert entry["status"] == "degraded" and entry["due_deliveries"] == 1
    deliver(one_delivery().pk)
    assert client.get("/readyz").json()["dependencies"]["webhooks"]["status"] == "ok"
