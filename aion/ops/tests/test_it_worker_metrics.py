"""Workers serve /metrics on AION_WORKER_METRICS_PORT, so counters they increment (backups, job runs)
reach Prometheus (the worker pods' scrape port in deploy/k8s/worker.yaml)."""

from __future__ import annotations

import time

import httpx
import pytest

from aion.testing.processes import start_celery_worker, stop
from aion.testing.services import free_port


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_serves_its_metrics(tmp_path):
    port = free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    worker = start_celery_worker("--hostname", "metrics@%h", AION_WORKER_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    from aion.ops.tasks import purge_logs

    wanted = 'aion_job_runs_total{job="ops.purge_logs",status="succeeded"} 1.0'
    body = ""
    try:
        purge_logs.delay()  # runs in the worker, through the job runner
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and wanted not in body and worker.poll() is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    finally:
        output = stop(worker)
    assert wanted in body, output + body[-2000:]
