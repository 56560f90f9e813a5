"""The Console Jobs page: last runs per job, a run's detail, and Run-now for admins only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from aion.models import AuditRecord
from aion.ops.choices import JobRunStatus, JobTrigger
from aion.ops.models import JobRun
from aion.testing.factories import OTHER_TENANT, TENANT, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture()
def admin_client(client):
    client.force_login(make_user("owner", ["kernel.admin"], TENANT))
    return client


def test_console_jobs_resolves_and_lists_every_job_with_its_last_run(admin_client):
    JobRun.objects.create(job_name="ops.purge_logs", status=JobRunStatus.FAILED, traceback="Traceback: boom", log_excerpt="INFO x: hi")
    url = reverse("console:jobs")
    assert url == "/console/jobs/"
    page = admin_client.get(url).content.decode()
    for name in ("ops.nightly_backup", "ops.purge_logs", "ops.export_clickhouse"):
        assert f'data-job="{name}"' in page
    assert "Run now" in page
    JobRun.objects.create(job_name="aion.relay_outbox", status=JobRunStatus.SUCCEEDED)
    filtered = admin_client.get(url, {"job": "ops.purge_logs"}).content.decode()
    runs_table = filtered.split('id="runs"', 1)[1]
    assert "ops.purge_logs" in runs_table and "aion.relay_outbox" not in runs_table
    run = JobRun.objects.get(job_name="ops.purge_logs")
    detail = admin_client.get(reverse("console:jobs-run", args=[run.pk])).content.decode()
    assert "Traceback: boom" in detail and "INFO x: hi" in detail


def test_run_now_queues_the_job_and_the_worker_run_is_recorded_as_console(admin_client, django_capture_on_commit_callbacks):
    from aion.celery import app

    app.conf.task_always_eager = True  # the broker hands the task straight to this process
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse("console:jobs-run-now", args=["ops.purge_logs"]))
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 302
    run = JobRun.objects.get(job_name="ops.purge_logs")
    assert run.status == JobRunStatus.SUCCEEDED
    assert run.trigger == JobTrigger.CONSOLE
    assert AuditRecord.objects.filter(action="ops.job.run_requested", resource_id="ops.purge_logs", actor="user:owner").exists()


def test_anonymous_is_sent_to_login(client):
    response = client.get("/console/jobs/")
    assert response.status_code == 302 and "/console/login/" in response["Location"]
    assert client.post("/console/jobs/ops.purge_logs/run/").status_code == 302
    assert not JobRun.objects.exists()


def test_auditor_may_look_but_not_run(client):
    client.force_login(make_user("watcher", ["auditor"], TENANT))
    page = client.get("/console/jobs/")
    assert page.status_code == 200 and "Run now" not in page.content.decode()
    assert client.post("/console/jobs/ops.purge_logs/run/").status_code == 403
    assert not JobRun.objects.exists()


def test_other_roles_and_tenants_without_the_role_are_refused(client):
    client.force_login(make_user("teammate", ["memory.writer"], TENANT))
    assert client.get("/console/jobs/").status_code == 403
    client.force_login(make_user("outsider", ["router.admin"], OTHER_TENANT))
    assert client.post("/console/jobs/ops.purge_logs/run/").status_code == 403


def test_unknown_job_and_run_are_404(admin_client):
    assert admin_client.post("/console/jobs/no.such.job/run/").status_code == 404
    assert admin_client.get("/console/jobs/runs/999999/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_run_now_is_picked_up_by_a_real_worker(client):
    """The broker and a worker subprocess, as in production: the run is recorded with trigger=console."""
    import time

    from aion.testing.processes import start_celery_worker, stop

    client.force_login(make_user("owner", ["kernel.admin"], TENANT))
    worker = start_celery_worker("--hostname", "jobs-page@%h")
    try:
        assert client.post("/console/jobs/ops.purge_logs/run/").status_code == 302
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not JobRun.objects.filter(job_name="ops.purge_logs").exclude(status="running").exists():
            time.sleep(0.3)
    finally:
        output = stop(worker)
    run = JobRun.objects.get(job_name="ops.purge_logs")
    assert (run.status, run.trigger) == (JobRunStatus.SUCCEEDED, JobTrigger.CONSOLE), output
    assert run.hostname
