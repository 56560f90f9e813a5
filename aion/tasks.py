"""Platform Celery tasks: the outbox relay."""

from __future__ import annotations

from celery import shared_task

from aion.jobs import scheduled_job


@shared_task(name="aion.relay_outbox")
@scheduled_job("aion.relay_outbox")  # the job runner: one run at a time, each run in ops.JobRun
def relay_outbox() -> int:
    """Send unpublished outbox rows to Kafka (no-op without KAFKA_BOOTSTRAP_SERVERS)."""
    from aion.relay import relay_once

    return relay_once()


@shared_task(name="aion.worker_heartbeat", bind=True)
def worker_heartbeat(self: object) -> str:
    """Proves a worker consumes the broker; /readyz shows the age of the newest heartbeat."""
    import socket

    from django.utils import timezone

    from aion.models import WorkerHeartbeat

    hostname = getattr(getattr(self, "request", None), "hostname", None) or socket.gethostname()
    WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"seen_at": timezone.now()})
    return hostname
