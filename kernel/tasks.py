"""Beat jobs of the kernel app."""

from __future__ import annotations

from celery import shared_task

from aion.jobs import scheduled_job


@shared_task(name="kernel.expire_proposals")
@scheduled_job("kernel.expire_proposals")
def expire_proposals() -> int:
    """Mark open proposals past their TTL as expired (reads already see it; this records it)."""
    from kernel.services import expire_proposals as expire

    return expire()
