"""Beat jobs of the modules app."""

from __future__ import annotations

from celery import shared_task

from aion.jobs import scheduled_job
from modules import health


@shared_task(name="modules.poll_health")
@scheduled_job("modules.poll_health")
def poll_health() -> int:
    """Poll every active module host's health path; returns how many were polled."""
    return len(health.poll_health())
