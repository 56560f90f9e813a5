"""Celery tasks of the hooks app: the send tasks (acks_late) and the beat retry sweep."""

from __future__ import annotations

from celery import shared_task

from aion.jobs import scheduled_job
from hooks.services.delivery import SEND_DELIVERIES_TASK, deliver, deliver_batch, due_delivery_ids, enqueue_deliveries


@shared_task(name=SEND_DELIVERIES_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_deliveries(delivery_pks: list[int]) -> int:
    """One attempt of each due delivery among DELIVERY_PKS (one lease claim, one outcome write).

    acks_late: a worker killed mid-send gets the message redelivered; what it had sent stays leased
    until the lease lapses, so nothing is sent twice by the redelivery while the lease holds.
    """
    return len(deliver_batch(list(delivery_pks)))


@shared_task(name="hooks.send_delivery", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_delivery(delivery_pk: int) -> str:
    """One attempt of one delivery (kept for messages queued before ``hooks.send_deliveries``)."""
    delivery = deliver(delivery_pk)
    return delivery.status if delivery else "skipped"


@shared_task(name="hooks.retry_due_deliveries")
@scheduled_job("hooks.retry_due_deliveries")
def retry_due_deliveries() -> int:
    """Enqueue every due delivery (new ones whose enqueue was lost, retries, lapsed leases), in batches."""
    ids = due_delivery_ids()
    enqueue_deliveries(ids)
    return len(ids)
