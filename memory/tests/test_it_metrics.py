"""Memory metrics on /metrics: ingest bytes, uploads by state, step durations and vectors stored."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


def test_metrics_are_exposed_with_the_contract_names(client, personas, ingest, upload_file, eager_celery):
    before = _value(client.get("/metrics").content.decode(), "memory_ingest_bytes_total")
    ingest(personas.writer, data=b"12345", chunk_index=0, total_chunks=2)
    upload_file(personas.writer, b"Metrics count vectors stored. " * 20, 300, content_type="text/plain")
    text = client.get("/metrics").content.decode()
    assert _value(text, "memory_ingest_bytes_total") - before == 5 + 600
    assert _value(text, 'memory_uploads{state="receiving"}') == 1
    assert _value(text, 'memory_uploads{state="complete"}') == 1
    assert _value(text, 'memory_uploads{state="aborted"}') == 0
    assert _value(text, "memory_vectors") >= 1
    assert _value(text, "memory_vectors_stored_total") >= 1
    for step in ("assemble", "extract", "chunk", "embed", "store"):
        assert f'memory_pipeline_step_duration_seconds_count{{step="{step}"}}' in text
