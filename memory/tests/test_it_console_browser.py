"""Console → Memory in a real browser (aion.testing.browser): upload progress refreshes (htmx) through completion.

The chunks are sent by this test process through the real API (a client with a writer's key), as an ingesting
service would; the served Console only reads the rows, so the page must update itself to show them.
"""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.browser import playwright_api
from aion.testing.factories import make_user

expect = playwright_api().expect
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_upload_progress_refreshes_through_completion(console_browser, personas, ingest, eager_celery):
    make_user("rita", [Role.MEMORY_READER])
    first = ingest(personas.writer, data=b"hello ", chunk_index=0, total_chunks=2, filename="two.txt", content_type="text/plain")
    upload_id = first.json()["upload_id"]
    console_browser.login("rita")
    page = console_browser.page
    console_browser.goto("/console/memory/")
    page.evaluate("window.__same_page = true")
    row = page.locator(f'#uploads tr[data-upload="{upload_id}"]')
    expect(row).to_have_attribute("data-state", "receiving")
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "50")
    expect(page.locator("#uploads-live")).to_be_visible()

    ingest(personas.writer, data=b"world", chunk_index=1, upload_id=upload_id)
    row = page.locator(f'#uploads tr[data-upload="{upload_id}"]')
    expect(row).to_have_attribute("data-state", "complete")
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(row).to_contain_text("11 bytes")
    expect(page.locator("#uploads-live")).to_have_count(0)  # settled: the panel stopped polling
    assert page.evaluate("window.__same_page") is True
