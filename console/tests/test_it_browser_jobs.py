"""Console → Jobs in a real browser (aion.testing.browser) with a real Celery worker: "Run now" shows the run without a reload."""

from __future__ import annotations

import pytest

from aion.ops.choices import JobTrigger
from aion.ops.models import JobRun
from aion.roles import Role
from aion.testing.browser import playwright_api
from aion.testing.factories import make_user
from aion.testing.processes import start_celery_worker, stop

expect = playwright_api().expect
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WORKER_TIMEOUT_MS = 60_000  # a cold worker process starts, then picks the task from the broker


@pytest.fixture()
def worker():
    process = start_celery_worker("--hostname", "jobs-browser@%h")
    yield process
    stop(process)


def test_run_now_shows_the_run_without_a_reload(console_browser, worker):
    make_user("kim", [Role.KERNEL_ADMIN])
    console_browser.login("kim")
    page = console_browser.page
    console_browser.goto("/console/jobs/")
    page.evaluate("window.__same_page = true")
    page.get_by_role("button", name="Run ops.purge_logs now").click()
    expect(page.locator("#runs-panel ul.messages")).to_contain_text("ops.purge_logs was queued")
    expect(page.locator("#run-waiting")).to_be_visible()
    run_row = page.locator('#runs tr[data-job="ops.purge_logs"]')
    expect(run_row).to_have_count(1, timeout=WORKER_TIMEOUT_MS)
    expect(run_row).to_contain_text("succeeded", timeout=WORKER_TIMEOUT_MS)
    expect(page.locator("#run-waiting")).to_have_count(0)  # polling stopped with the finished run
    assert page.evaluate("window.__same_page") is True
    run = JobRun.objects.get(job_name="ops.purge_logs")
    assert run.trigger == JobTrigger.CONSOLE
    run_row.get_by_role("link").first.click()
    expect(page.locator("h1")).to_contain_text("ops.purge_logs")
    expect(page.get_by_role("heading", name="Log", exact=True)).to_be_visible()
