"""publish(): an event exists iff the change committed, its envelope matches docs/events, backlog in /readyz and /metrics."""

from __future__ import annotations

from datetime import timedelta

import jsonschema
import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from aion import audit
from aion.auth.principal import system_principal
from aion.incidents import record_incident
from aion.models import OutboxEvent, OutboxRelayState
from aion.outbox import UnknownTopic, publish
from aion.relay import _acquire_lease, _release_lease
from aion.testing.factories import TENANT
from aion.topics import KERNEL_HOSTS, KERNEL_PROPOSALS, TOPICS, validate_event

pytestmark = pytest.mark.django_db


def test_event_exists_only_if_the_transaction_commits():
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(KERNEL_PROPOSALS, "p-1", {"proposal_id": 1, "state": "submitted"}, event_type="kernel.proposal.submitted", tenant_id=TENANT)
        raise RuntimeError("the change failed")
    assert OutboxEvent.objects.count() == 0
    with transaction.atomic():
        publish(KERNEL_PROPOSALS, "p-1", {"proposal_id": 1, "state": "submitted"}, event_type="kernel.proposal.submitted", tenant_id=TENANT)
    assert OutboxEvent.objects.count() == 1


def test_unknown_topics_are_refused():
    with pytest.raises(UnknownTopic):
        publish("no.such.topic", "k", {})


def test_published_envelopes_match_their_topic_schema():
    actor = system_principal(TENANT, name="tester")
    audit.record("proposal.approved", "proposal", 7, actor=actor, tenant_id=TENANT, after={"api_key": "sk-live-should-not-leak"})
    record_incident("hook_signature", "bad_signature", tenant_id=TENANT, source_ip="203.0.113.5", headers={}, body=b"{}")
    # audit and incidents were just written for real; kernel.proposals and kernel.hosts have strict schemas that a
    # sample payload cannot meet (real kernel events are checked against them in kernel/tests/test_it_event_schema.py
    # and kernel/tests/test_it_host_report.py).
    for name in set(TOPICS) - {"aion.audit.activity", "security.incidents", KERNEL_PROPOSALS, KERNEL_HOSTS}:
        publish(name, "k", {"sample": True}, event_type=f"{name}.sample", tenant_id=TENANT, actor=actor)
    for event in OutboxEvent.objects.all():
        validate_event(event.topic, event.envelope)
        assert event.envelope["event_id"] == str(event.event_id)
    audit_event = OutboxEvent.objects.filter(topic="aion.audit.activity", event_type="audit.proposal.approved").get()
    assert audit_event.envelope["data"]["after"] == {"api_key": "[redacted]"}
    # A malformed envelope is caught by the schema.
    broken = dict(audit_event.envelope)
    del broken["event_id"]
    with pytest.raises(jsonschema.ValidationError):
        validate_event("aion.audit.activity", broken)


def test_backlog_in_readyz_and_metrics():
    for n in range(3):
        publish(KERNEL_PROPOSALS, f"p-{n}", {"proposal_id": n})
    OutboxEvent.objects.filter(pk=OutboxEvent.objects.order_by("id").first().pk).update(created_at=timezone.now() - timedelta(minutes=5))
    bus = Client().get("/readyz").json()["dependencies"]["event_bus"]
    assert bus["backlog"] == 3
    assert bus["oldest_unpublished_age_seconds"] >= 299
    text = Client().get("/metrics").content.decode()
    assert "aion_outbox_backlog 3.0" in text
    age_line = next(line for line in text.splitlines() if line.startswith("aion_outbox_oldest_age_seconds "))
    assert float(age_line.split()[1]) >= 299


def test_one_relay_at_a_time_through_the_lease():
    now = timezone.now()
    assert _acquire_lease(now, "relay-a")
    assert not _acquire_lease(now, "relay-b")
    # A crashed holder's lease expires.
    assert _acquire_lease(now + timedelta(hours=1), "relay-b")
    _release_lease("relay-b")
    assert _acquire_lease(now, "relay-a")
    assert OutboxRelayState.objects.get().holder == "relay-a"


def test_the_holder_renews_its_lease_until_another_relay_takes_an_expired_one():
    now = timezone.now()
    assert _acquire_lease(now, "relay-a")
    first_expiry = OutboxRelayState.objects.get().lease_expires_at
    later = now + timedelta(seconds=30)
    assert _acquire_lease(later, "relay-a")  # renewal between batches pushes the expiry out
    assert OutboxRelayState.objects.get().lease_expires_at > first_expiry
    assert not _acquire_lease(later, "relay-b")
    # relay-a stalls past its lease; relay-b takes over and relay-a's next renewal fails, so it stops sending.
    much_later = later + timedelta(hours=1)
    assert _acquire_lease(much_later, "relay-b")
    assert not _acquire_lease(much_later, "relay-a")


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_get_exactly_one_lease():
    import threading

    from django.db import connection

    now = timezone.now()
    _acquire_lease(now, "warm-up")  # creates the state row
    _release_lease("warm-up")
    barrier = threading.Barrier(6)
    winners = []

    def contend(name):
        try:
            barrier.wait(5)
            if _acquire_lease(now, name):
                winners.append(name)
        finally:
            connection.close()

    threads = [threading.Thread(target=contend, args=(f"relay-{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(winners) == 1
