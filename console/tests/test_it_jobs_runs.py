"""Console → Jobs: the run table hides the frequent relay runs behind a summary; Run-now answers htmx with a polling panel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aion.ops.choices import JobRunStatus, JobTrigger
from aion.ops.models import JobRun
from aion.testing.factories import TENANT, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture()
def admin_client(client):
    client.force_login(make_user("owner", ["kernel.admin"], TENANT))
    return client


def test_relay_runs_are_summarised_not_listed_unless_asked_for(admin_client):
    for _ in range(28):
        JobRun.objects.create(job_name="aion.relay_outbox", status=JobRunStatus.SUCCEEDED)
    JobRun.objects.create(job_name="aion.relay_outbox", status=JobRunStatus.FAILED)
    JobRun.objects.create(job_name="ops.purge_logs", status=JobRunStatus.SUCCEEDED)
    page = admin_client.get("/console/jobs/").content.decode()
    runs = page.split('id="runs-panel"', 1)[1]
    assert 'data-job="ops.purge_logs"' in runs and "data-run=" in runs
    assert 'data-job="aion.relay_outbox"' not in runs
    assert 'data-frequent="aion.relay_outbox"' in runs and "29 runs in the last hour" in runs and "1 failed" in runs
    shown = admin_client.get("/console/jobs/", {"frequent": "on"}).content.decode().split('id="runs-panel"', 1)[1]
    assert shown.count('data-job="aion.relay_outbox"') == 29
    only = admin_client.get("/console/jobs/", {"job": "aion.relay_outbox"}).content.decode().split('id="runs-panel"', 1)[1]
    assert 'data-job="ops.purge_logs"' not in only and 'data-job="aion.relay_outbox"' in only
    bad = admin_client.get("/console/jobs/", {"job": "no.such.job", "status": "x"})
    assert bad.status_code == 200 and 'id="filter-errors"' in bad.content.decode()


def test_run_now_over_htmx_returns_the_panel_polling_until_the_run_has_finished(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post("/console/jobs/ops.purge_logs/run/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="runs-panel"') and "was queued" in html
    assert 'hx-trigger="every 1s"' in html and "awaiting=ops.purge_logs" in html and 'id="run-waiting"' in html
    poll = html.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    still = admin_client.get(poll, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in still  # no run yet
    run = JobRun.objects.create(job_name="ops.purge_logs", status=JobRunStatus.SUCCEEDED, trigger=JobTrigger.CONSOLE,
                                started_at=timezone.now() + timedelta(seconds=1))  # fmt: skip
    done = admin_client.get(poll, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done and f'data-run="{run.pk}"' in done and 'id="run-waiting"' not in done


def test_a_runs_detail_shows_its_log(admin_client):
    run = JobRun.objects.create(job_name="ops.purge_logs", status=JobRunStatus.SUCCEEDED, log_excerpt="INFO purged 3 rows")
    assert "INFO purged 3 rows" in admin_client.get(f"/console/jobs/runs/{run.pk}/").content.decode()
    quiet = JobRun.objects.create(job_name="ops.purge_logs", status=JobRunStatus.SUCCEEDED)
    assert "This run logged nothing." in admin_client.get(f"/console/jobs/runs/{quiet.pk}/").content.decode()


def test_negative_authorisation_of_the_runs_panel(client):
    assert client.get("/console/jobs/runs/").status_code == 302
    client.force_login(make_user("mel", ["memory.reader"], TENANT))
    assert client.get("/console/jobs/runs/").status_code == 403
    assert client.post("/console/jobs/ops.purge_logs/run/", HTTP_HX_REQUEST="true").status_code == 403
