"""Request logs leave the request path: buffered in memory, written in batches, and none lost on a clean shutdown."""

from __future__ import annotations

import signal
import uuid

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aion.ops.choices import LogType
from aion.ops.logstore import LogBuffer
from aion.ops.models import RequestLog
from aion.testing.processes import serve

pytestmark = pytest.mark.django_db(transaction=True)  # a served process and a flush thread write for real


def test_a_flush_writes_a_thousand_entries_in_a_handful_of_statements(settings):
    settings.AION_LOG_FLUSH_SECONDS = 3600  # only the explicit flush below writes
    buffer = LogBuffer()
    for i in range(1000):
        buffer.add(LogType.REQUEST, {"request_id": f"batch-{i}", "method": "GET", "path": f"/p/{i}", "route": "r", "status": 200})
    with CaptureQueriesContext(connection) as queries:
        assert buffer.flush() == 1000
    assert len(queries) < 20  # a few multi-row INSERTs (SQLite caps variables per statement), not 1000
    assert RequestLog.objects.filter(request_id__startswith="batch-").count() == 1000
    assert buffer.flush() == 0


def test_the_buffer_is_bounded_and_counts_what_it_drops(settings):
    from aion.ops.metrics import LOG_ENTRIES_DROPPED

    settings.AION_LOG_FLUSH_SECONDS = 3600
    settings.AION_LOG_BUFFER_MAX_ENTRIES = 100
    before = LOG_ENTRIES_DROPPED._value.get()
    buffer = LogBuffer()
    for i in range(150):
        buffer.add(LogType.REQUEST, {"request_id": f"bounded-{i}", "method": "GET", "path": "/", "status": 200})
    assert len(buffer.entries) == 100 and buffer.entries[0][1]["request_id"] == "bounded-50"  # the oldest went first
    assert LOG_ENTRIES_DROPPED._value.get() - before == 50


@pytest.mark.slow
def test_a_served_process_writes_every_request_log_by_the_time_it_exits_on_sigterm(tmp_path):
    """The web process as deployed (the Dockerfile's command); the flush interval is long, so only the exit flush writes."""
    instance = serve(tmp_path, AION_LOG_FLUSH_SECONDS="3600", DJANGO_SETTINGS_MODULE="aion.settings")
    prefix = uuid.uuid4().hex[:8]
    with httpx.Client(timeout=30) as client:
        for i in range(50):
            assert client.get(instance.url("/readyz"), headers={"x-request-id": f"{prefix}-{i}"}).status_code in (200, 503)
    assert RequestLog.objects.filter(request_id__startswith=prefix).count() == 0  # still buffered: off the request path
    instance.process.send_signal(signal.SIGTERM)
    instance.process.wait(timeout=30)
    assert RequestLog.objects.filter(request_id__startswith=prefix).count() == 50, instance.log()[-2000:]


@pytest.mark.slow
def test_a_celery_worker_writes_its_buffered_task_logs_when_it_stops():
    """A real worker (solo pool) with a long flush interval: the task log row appears by the time SIGTERM has stopped it."""
    import time

    from aion.models import WorkerHeartbeat
    from aion.ops.models import TaskLog
    from aion.tasks import worker_heartbeat
    from aion.testing.processes import start_celery_worker, stop

    worker = start_celery_worker("--hostname", "logbuffer@%h", AION_LOG_FLUSH_SECONDS="3600", DJANGO_SETTINGS_MODULE="aion.settings")
    try:
        worker_heartbeat.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not WorkerHeartbeat.objects.filter(hostname__startswith="logbuffer@").exists():
            time.sleep(0.2)
        assert WorkerHeartbeat.objects.filter(hostname__startswith="logbuffer@").exists()
        assert not TaskLog.objects.filter(task_name="aion.worker_heartbeat").exists()  # buffered, not yet written
    finally:
        output = stop(worker)
    assert TaskLog.objects.filter(task_name="aion.worker_heartbeat", status="SUCCESS").exists(), output[-2000:]
