"""The job runner: every run recorded in JobRun, one run at a time per job, runnable by command."""

from __future__ import annotations

import logging
import threading

import pytest
from django.core.management import CommandError, call_command

from aion.ops.choices import JobRunStatus, JobTrigger
from aion.ops.jobs import REGISTRY, scheduled_job
from aion.ops.models import JobRun
from aion.ops.runner import job_lock

pytestmark = pytest.mark.django_db


@pytest.fixture()
def jobs():
    """Registers throw-away jobs and removes them from the registry afterwards."""
    added: list[str] = []

    def register(name, fn):
        added.append(name)
        return scheduled_job(name)(fn)

    yield register
    for name in added:
        REGISTRY.pop(name, None)


def test_a_successful_run_is_recorded_with_its_log_excerpt_and_result(jobs):
    def work():
        logging.getLogger("test.job").info("processed %d rows", 3)
        return {"rows": 3}

    job = jobs("test.ok", work)
    assert job() == {"rows": 3}
    run = JobRun.objects.get(job_name="test.ok")
    assert run.status == JobRunStatus.SUCCEEDED
    assert run.trigger == JobTrigger.BEAT
    assert run.finished_at >= run.started_at
    assert run.duration_ms is not None
    assert "processed 3 rows" in run.log_excerpt
    assert "'rows': 3" in run.result
    assert run.traceback == ""


def test_a_failing_run_is_recorded_with_its_traceback_and_re_raised(jobs):
    def boom():
        logging.getLogger("test.job").warning("about to fail")
        raise ValueError("disk on fire")

    job = jobs("test.boom", boom)
    with pytest.raises(ValueError, match="disk on fire"):
        job()
    run = JobRun.objects.get(job_name="test.boom")
    assert run.status == JobRunStatus.FAILED
    assert "ValueError: disk on fire" in run.traceback
    assert "about to fail" in run.log_excerpt
    assert run.finished_at is not None


def test_a_run_that_finds_the_lock_held_is_skipped_not_run(jobs):
    """Another process holds the lock (a thread with its own DB connection stands in for it)."""
    calls = []
    job = jobs("test.locked", lambda: calls.append(1))
    held, release = threading.Event(), threading.Event()

    def holder():
        from django.db import connection

        try:
            with job_lock("test.locked") as acquired:
                assert acquired
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    try:
        assert job() is None
    finally:
        release.set()
        thread.join(10)
    assert calls == []
    assert JobRun.objects.get(job_name="test.locked").status == JobRunStatus.SKIPPED
    # Once released, the next run goes ahead.
    job()
    assert calls == [1]
    assert JobRun.objects.filter(job_name="test.locked", status=JobRunStatus.SUCCEEDED).count() == 1


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(jobs):
    job = jobs("test.recover", lambda: "ok")
    JobRun.objects.create(job_name="test.recover", status=JobRunStatus.RUNNING)
    job()
    statuses = sorted(JobRun.objects.filter(job_name="test.recover").values_list("status", flat=True))
    assert statuses == [JobRunStatus.INTERRUPTED, JobRunStatus.SUCCEEDED]


def test_run_job_command_runs_a_job_by_name_and_records_a_manual_run(jobs):
    jobs("test.manual", lambda: 42)
    call_command("run_job", "test.manual")
    run = JobRun.objects.get(job_name="test.manual")
    assert (run.status, run.trigger, run.result) == (JobRunStatus.SUCCEEDED, JobTrigger.MANUAL, "42")


def test_run_job_command_fails_loudly_for_unknown_and_failing_jobs(jobs):
    jobs("test.fails", lambda: 1 / 0)
    with pytest.raises(CommandError, match="no job named"):
        call_command("run_job", "test.nope")
    with pytest.raises(CommandError, match="ZeroDivisionError"):
        call_command("run_job", "test.fails")
    assert JobRun.objects.get(job_name="test.fails").status == JobRunStatus.FAILED


def test_every_beat_schedule_entry_is_a_registered_job_or_platform_task():
    """Each scheduled task name exists as a Celery task; the app jobs go through the runner."""
    from django.conf import settings

    from aion.celery import app
    from aion.ops.jobs import discover

    discover()
    app.loader.import_default_modules()
    missing = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] not in app.tasks]
    assert missing == []
    # Every job is built on the runner; the worker heartbeat is a liveness ping, not a job.
    jobs = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} - {"aion.worker_heartbeat"}
    assert jobs - set(REGISTRY) == set()
