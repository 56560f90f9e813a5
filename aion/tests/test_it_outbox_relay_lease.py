"""``manage.py outbox_relay`` tells a lease held by another relay (exit 0) from Kafka refusing the backlog (exit 1).

The other relay's lease is taken through the real lease function, as beat's relay takes it. Kafka is a
closed local port: while the lease is held the command never reaches it, and once it does, the failure
is a real one (no broker answers).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from aion.models import OutboxRelayState
from aion.outbox import backlog, publish
from aion.relay import _acquire_lease, discard_producer
from aion.testing.factories import TENANT
from aion.testing.services import free_port
from aion.topics import TASKS_LIFECYCLE

pytestmark = [
    pytest.mark.django_db,
    # kafka-python loads its protocol schemas with importlib.resources' legacy API on the first producer.
    pytest.mark.filterwarnings("ignore:(open|read)_text is deprecated:DeprecationWarning"),
]

BEAT = "beat-host:4242:1"


@pytest.fixture()
def dead_kafka():
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=[f"127.0.0.1:{free_port()}"], AION_KAFKA_TIMEOUT_SECONDS=0.5):
        yield
    discard_producer()


@pytest.fixture()
def pending_event():
    return publish(TASKS_LIFECYCLE, "task-1", {"task_id": "task-1", "state": "queued"}, event_type="task.queued", tenant_id=TENANT)


def _held_message(capsys):
    expires = OutboxRelayState.objects.get().lease_expires_at
    return f"another relay holds the lease (held by {BEAT}, until {expires.isoformat()})", capsys.readouterr().out


def test_a_lease_held_by_another_relay_is_exit_0_and_names_the_holder(dead_kafka, pending_event, capsys):
    assert _acquire_lease(timezone.now(), BEAT)
    call_command("outbox_relay")  # no CommandError: exit 0
    expected, out = _held_message(capsys)
    assert expected in out
    assert "Relayed 0 events; 1 still unpublished." in out
    assert OutboxRelayState.objects.get().holder == BEAT  # the command never touched the other relay's lease
    assert backlog()[0] == 1


def test_wait_polls_for_the_lease_then_gives_up_with_exit_0(dead_kafka, pending_event, capsys):
    assert _acquire_lease(timezone.now(), BEAT)
    started = time.monotonic()
    call_command("outbox_relay", "--until-empty", "--wait", "1")
    elapsed = time.monotonic() - started
    expected, out = _held_message(capsys)
    assert expected in out
    assert 1.0 <= elapsed < 10


def test_wait_takes_a_lease_that_runs_out_and_then_reports_the_kafka_failure(dead_kafka, pending_event, capsys):
    # Beat's relay took the lease long ago; it runs out in about a second.
    assert _acquire_lease(timezone.now() - timedelta(seconds=settings.AION_OUTBOX_RELAY_LOCK_SECONDS - 1), BEAT)
    started = time.monotonic()
    with pytest.raises(CommandError) as failure:
        call_command("outbox_relay", "--wait", "20")
    assert time.monotonic() - started < 20  # it took the lease as soon as it ran out, not at the end of the wait
    message = str(failure.value)
    assert message.startswith("Kafka did not take the backlog: ")
    assert "NoBrokersAvailable" in message or "KafkaTimeoutError" in message
    assert "another relay" not in capsys.readouterr().out
    state = OutboxRelayState.objects.get()
    assert state.holder == "" and state.consecutive_failures == 1  # released; backing off


def test_a_real_kafka_failure_is_exit_1_with_a_reason_and_the_backoff_says_so(dead_kafka, pending_event):
    with pytest.raises(CommandError) as failure:
        call_command("outbox_relay")
    reason = str(failure.value).removeprefix("Kafka did not take the backlog: ")
    assert reason.strip() and reason != str(failure.value)

    # Run again within the back-off: still exit 1, and the reason says why nothing was tried.
    with pytest.raises(CommandError) as backing_off:
        call_command("outbox_relay")
    assert "backing off until" in str(backing_off.value) and reason in str(backing_off.value)
    assert backlog()[0] == 1


def test_wait_rejects_a_negative_duration(dead_kafka):
    with pytest.raises(CommandError, match="--wait"):
        call_command("outbox_relay", "--wait", "-1")
