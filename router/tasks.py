"""Celery tasks of the router: task execution and the stale-task sweeper (beat)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from aion.jobs import scheduled_job
from router import services


@shared_task(name="router.execute_task", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def execute_task(self: Any, task_id: str) -> str:
    outcome = services.execute_task(task_id)
    if outcome == "busy":
        # Another worker holds a live lease; look again once it may have expired.
        raise self.retry(countdown=30)
    return outcome


@shared_task(name="router.requeue_stale_tasks")
@scheduled_job("router.requeue_stale_tasks")
def requeue_stale_tasks() -> int:
    return services.requeue_stale_tasks()
