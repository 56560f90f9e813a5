"""The transactional outbox: ``publish()`` is the one way any app emits an event.

The row is written inside the caller's transaction, so an event exists if and
only if the change committed. The relay (``aion.tasks.relay_outbox``) sends
unpublished rows to Kafka when KAFKA_BOOTSTRAP_SERVERS is set. The
``event_published`` signal fires in the same transaction, which is how the
hooks app turns events into outbound webhook deliveries.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from aion.context import current_request_id
from aion.models import OutboxEvent
from aion.topics import TOPICS

# sender=OutboxEvent, event=<OutboxEvent>, envelope=<dict>
event_published = Signal()


class UnknownTopic(ValueError):
    pass


def actor_name(actor: Any) -> str:
    if actor is None:
        return "system"
    return str(getattr(actor, "subject", None) or actor)


def publish(
    topic: str,
    key: str,
    payload: dict[str, Any],
    *,
    event_type: str | None = None,
    tenant_id: str = "",
    actor: Any = None,
) -> OutboxEvent:
    """Write one event envelope to the outbox, inside the current transaction."""
    if topic not in TOPICS:
        raise UnknownTopic(f"{topic!r} is not in aion.topics.TOPICS")
    event_id = uuid.uuid4()
    envelope: dict[str, Any] = {
        "event_id": str(event_id),
        "type": event_type or topic,
        "occurred_at": timezone.now().isoformat(),
        "tenant_id": tenant_id,
        "actor": actor_name(actor),
        "request_id": current_request_id() or "",
        "data": payload,
    }
    # No savepoint: inside the caller's transaction a failure rolls the whole change back anyway
    # (no caller catches it), and SAVEPOINT/RELEASE were two round trips per event on PostgreSQL.
    with transaction.atomic(savepoint=False):
        event = OutboxEvent.objects.create(
            event_id=event_id,
            topic=topic,
            key=str(key),
            event_type=str(envelope["type"]),
            tenant_id=tenant_id,
            envelope=envelope,
        )
        event_published.send(sender=OutboxEvent, event=event, envelope=envelope)
    return event


def backlog() -> tuple[int, float | None]:
    """(unpublished rows, age in seconds of the oldest one)."""
    pending = OutboxEvent.objects.filter(published_at__isnull=True)
    count = pending.count()
    oldest = pending.order_by("id").values_list("created_at", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest else None
    return count, age
