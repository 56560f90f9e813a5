"""Memory metrics: ingest bytes, pipeline step durations, vectors stored, uploads by state, store-level multipart aborts.

``memory_uploads{state}`` and ``memory_vectors`` are read from the database at scrape time (a
collector on ``aion.metrics.scrape_registry``), so every process reports the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from aion.metrics import register_scrape_collector

INGEST_BYTES = Counter("memory_ingest_bytes_total", "Decoded chunk bytes accepted by POST /v1/memory/ingest")
STEP_DURATION = Histogram(
    "memory_pipeline_step_duration_seconds",
    "Duration of each memory pipeline step (assemble, extract, chunk, embed, store)",
    ["step"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
VECTORS_STORED = Counter("memory_vectors_stored_total", "Vectors upserted into Qdrant by the store step")
# Store-level, unlike memory_uploads{state="aborted"}: an upload whose multipart upload is already gone
# (MinIO's api stale_uploads_expiry, a bucket rule) or that never had one (filesystem) is not counted.
STORAGE_MULTIPART_ABORTED = Counter(
    "aion_storage_multipart_aborted_total",
    "Multipart uploads the memory.abort_stale_uploads beat job aborted at the object store (AbortMultipartUpload)",
)


class MemoryCollector:
    def collect(self) -> Iterator[Any]:
        from django.db.models import Count, Sum

        from memory.choices import UploadState
        from memory.models import Upload

        uploads = GaugeMetricFamily("memory_uploads", "Memory uploads by state", labels=["state"])
        counts = dict(Upload.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
        for state in UploadState.values:
            uploads.add_metric([state], counts.get(state, 0))
        yield uploads
        total = Upload.objects.filter(state=UploadState.COMPLETE).aggregate(n=Sum("vector_count"))["n"] or 0
        vectors = GaugeMetricFamily("memory_vectors", "Vectors held in Qdrant for complete uploads")
        vectors.add_metric([], total)
        yield vectors

    def describe(self) -> list[Any]:
        return []


def register_collector() -> None:
    register_scrape_collector(MemoryCollector())
