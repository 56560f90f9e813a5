"""Celery tasks of the hooks app: the send task (acks_late) and the beat retry sweep."""

from __future__ import annotations

from celery import shared_task

from aion.jobs import scheduled_job


@shared_task(name="hooks.send_delivery", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_delivery(delivery_pk: int) -> str:
    """One attempt of one delivery. acks_late: a worker killed mid-send gets the message redelivered."""
    from hooks.services import deliver

    delivery = deliver(delivery_pk)
    return delivery.status if delivery else "skipped"


@shared_task(name="hooks.retry_due_deliveries")
@scheduled_job("hooks.retry_due_deliveries")
def retry_due_deliveries() -> int:
    """Enqueue every due delivery (new ones whose enqueue was lost, retries, lapsed leases)."""
    from hooks.services import due_delivery_ids, enqueue_deliveries

    ids = due_delivery_ids()
    enqueue_deliveries(ids)
    return len(ids)
