"""The embedded broker drives a real Celery worker process (not eager mode)."""

import time

import pytest

from aion.models import WorkerHeartbeat
from aion.testing.processes import start_celery_worker, stop


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_consumes_the_configured_broker(client):
    from aion.tasks import worker_heartbeat

    worker = start_celery_worker("--hostname", "testworker@%h")
    try:
        worker_heartbeat.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
            time.sleep(0.3)
    finally:
        output = stop(worker)
    assert WorkerHeartbeat.objects.filter(hostname__startswith="testworker@").exists(), output
    deps = client.get("/readyz").json()["dependencies"]
    assert deps["broker"]["last_worker_heartbeat_age_seconds"] is not None
