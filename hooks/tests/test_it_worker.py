"""A real Celery worker sends deliveries; killed mid-send (SIGKILL), the delivery is not lost."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from aion.testing.processes import start_celery_worker, stop
from hooks.choices import DeliveryStatus
from hooks.models import WebhookDelivery
from hooks.services import deliver, due_delivery_ids
from hooks.tasks import send_delivery
from hooks.tests.helpers import make_endpoint, publish_event


def wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_loses_no_delivery(http_server):
    queue = f"test-hooks-{uuid.uuid4().hex[:8]}"  # our own queue: other runs may share the broker
    make_endpoint(http_server.url("/slow"))
    publish_event()
    delivery = WebhookDelivery.objects.get()
    http_server.delay = 30  # the receiver hangs, so the worker is mid-send when killed
    worker = start_celery_worker("--hostname", f"{queue}@%h", "-Q", queue, AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
    try:
        send_delivery.apply_async(args=[delivery.pk], queue=queue)
        arrived = wait_for(lambda: len(http_server.requests) == 1)
        worker.kill()  # SIGKILL: no cleanup, no ack
    finally:
        output = stop(worker)
    assert arrived, output
    http_server.delay = 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.locked_until is not None  # leased, never finished
    # Once the dead worker's lease lapses the sweep finds it and the resend succeeds, with the same id.
    later = timezone.now() + timedelta(seconds=75)
    assert due_delivery_ids(later) == [delivery.pk]
    assert deliver(delivery.pk, now=later).status == DeliveryStatus.SUCCEEDED
    assert len({r.headers["x-omerta-delivery"] for r in http_server.requests}) == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers(http_server):
    queue = f"test-hooks-{uuid.uuid4().hex[:8]}"
    make_endpoint(http_server.url("/ok"))
    publish_event()
    delivery = WebhookDelivery.objects.get()
    worker = start_celery_worker("--hostname", f"{queue}@%h", "-Q", queue, AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
    try:
        send_delivery.apply_async(args=[delivery.pk], queue=queue)
        done = wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SUCCEEDED)
    finally:
        output = stop(worker)
    assert done, output
    assert http_server.requests[0].headers["x-omerta-delivery"] == str(delivery.delivery_id)
