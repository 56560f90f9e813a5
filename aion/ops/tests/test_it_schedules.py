"""The beat schedule lives in django-celery-beat's tables: installed by command or at beat start-up,
and an admin's edit survives both."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from aion.ops.schedules import DatabaseScheduler

pytestmark = pytest.mark.django_db

EXPECTED_TASKS = {
    "aion.relay_outbox",
    "hooks.retry_due_deliveries",
    "kernel.expire_proposals",
    "memory.apply_retention",
    "memory.abort_stale_uploads",
    "modules.poll_health",
    "ops.nightly_backup",
    "ops.purge_logs",
}


def test_the_default_schedule_names_every_job_of_the_issue():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks >= EXPECTED_TASKS


def test_install_schedules_creates_every_entry_and_keeps_admin_edits(capsys):
    call_command("install_schedules")
    assert set(PeriodicTask.objects.values_list("name", flat=True)) >= set(settings.CELERY_BEAT_SCHEDULE)
    assert "created: nightly-backup" in capsys.readouterr().out
    # An admin slows the backup down in Django admin...
    task = PeriodicTask.objects.get(name="nightly-backup")
    task.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.DAYS)
    task.save()
    call_command("install_schedules")
    assert "kept: nightly-backup" in capsys.readouterr().out
    assert PeriodicTask.objects.get(name="nightly-backup").interval.every == 2
    # ...and --reset restores the default.
    call_command("install_schedules", "--reset")
    task = PeriodicTask.objects.get(name="nightly-backup")
    assert task.interval.period == IntervalSchedule.SECONDS and task.interval.every == 86400


@pytest.mark.django_db(transaction=True)  # the scheduler closes stale DB connections itself
def test_beat_start_up_installs_missing_entries_without_overwriting_edits():
    from aion.celery import app

    call_command("install_schedules")
    task = PeriodicTask.objects.get(name="log-retention")
    task.interval = IntervalSchedule.objects.create(every=6, period=IntervalSchedule.HOURS)
    task.save()
    PeriodicTask.objects.filter(name="module-health").delete()
    scheduler = DatabaseScheduler(app=app, lazy=True)
    scheduler.setup_schedule()
    assert PeriodicTask.objects.filter(name="module-health").exists()
    assert PeriodicTask.objects.get(name="log-retention").interval.every == 6
    assert set(scheduler.schedule) >= set(settings.CELERY_BEAT_SCHEDULE)


@pytest.mark.django_db(transaction=True)
def test_a_real_beat_process_on_a_fresh_database_installs_the_full_schedule(tmp_path):
    """What `scripts/dev.py run` starts: `celery -A aion beat` with the database scheduler."""
    import subprocess
    import sys
    import time

    from aion.testing.processes import ROOT, stop, subprocess_env

    assert not PeriodicTask.objects.exists()
    command = [sys.executable, "-m", "celery", "-A", "aion", "beat", "-l", "WARNING", "--pidfile", str(tmp_path / "beat.pid")]
    beat = subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        wanted = set(settings.CELERY_BEAT_SCHEDULE)
        while time.monotonic() < deadline and not wanted <= set(PeriodicTask.objects.values_list("name", flat=True)):
            if beat.poll() is not None:
                break
            time.sleep(0.3)
    finally:
        output = stop(beat)
    installed = {t.name: t.task for t in PeriodicTask.objects.all()}
    assert {name: installed.get(name) for name in settings.CELERY_BEAT_SCHEDULE} == {
        name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }, output
