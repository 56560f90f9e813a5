"""Celery tasks of the memory app: the pipeline steps and the two beat jobs."""

from __future__ import annotations

from celery import shared_task

from aion.jobs import scheduled_job
from memory import services


@shared_task(name="memory.assemble_upload", acks_late=True)
def assemble_upload(upload_id: str) -> bool:
    return services.assemble_upload(upload_id)


@shared_task(name="memory.process_upload", acks_late=True)
def process_upload(upload_id: str) -> bool:
    return services.process_upload(upload_id)


@shared_task(name="memory.apply_retention")
@scheduled_job("memory.apply_retention")
def apply_retention() -> int:
    return services.apply_retention()


@shared_task(name="memory.abort_stale_uploads")
@scheduled_job("memory.abort_stale_uploads")
def abort_stale_uploads() -> int:
    return services.abort_stale_uploads()
