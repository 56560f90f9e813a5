"""Buffered proposals: with Redis unreachable and Kafka down, proposals are accepted and their events wait in
the outbox; when the broker returns the relay replays them (the runbook's "replaying buffered kernel proposals").

Real engines only: a dead Redis port for the channel layer, a stopped Tansu broker, then the same broker started.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from aion.auth.principal import Principal
from aion.models import OutboxEvent
from aion.testing.kernel_proposals import change, proposal_body, submit
from aion.testing.services import free_port
from aion.topics import KERNEL_PROPOSALS
from kernel import services
from kernel.models import Proposal

pytestmark = pytest.mark.django_db(transaction=True)


def test_proposals_are_accepted_while_redis_and_kafka_are_down_and_replayed_when_kafka_returns(proposer, admin, kafka_broker):
    from aion.relay import discard_producer, relay_once  # the Gateway's relay

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    kafka_broker.stop()
    down_layer = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead_redis]}}}
    with override_settings(CHANNEL_LAYERS=down_layer, KAFKA_BOOTSTRAP_SERVERS=[kafka_broker.bootstrap], AION_KAFKA_TIMEOUT_SECONDS=1.0):
        # Through the API (live updates to the dead Redis fail quietly after commit)...
        accepted = submit(proposer)
        # ...and through the service the Console and signed webhooks use.
        principal = Principal(kind="user", subject="user:bob", tenant_id="acme", roles=frozenset({"kernel.proposer", "kernel.admin"}))
        second = services.submit_proposal(principal, **proposal_body(changes=[change("vm.swappiness", None, 10)]))
        assert Proposal.objects.filter(pk__in=[accepted["id"], second.pk], state="pending").count() == 2

        buffered = OutboxEvent.objects.filter(topic=KERNEL_PROPOSALS, published_at__isnull=True)
        assert set(buffered.values_list("key", flat=True)) == {accepted["id"], str(second.pk)}
        # Kafka is down: the events stay in the outbox (the relay's own outage handling is tested in aion/tests).
        assert buffered.count() == 2
        assert all(e.envelope["data"]["state"] == "pending" for e in buffered)

    kafka_broker.start()
    kafka_broker.create_topics([KERNEL_PROPOSALS])
    with override_settings(KAFKA_BOOTSTRAP_SERVERS=[kafka_broker.bootstrap], AION_KAFKA_TIMEOUT_SECONDS=5.0):
        try:
            # past the relay's backoff window
            assert relay_once(now=timezone.now() + timedelta(hours=1)) >= 2
        finally:
            discard_producer()
    assert not OutboxEvent.objects.filter(topic=KERNEL_PROPOSALS, published_at__isnull=True).exists()
    records = kafka_broker.consume(KERNEL_PROPOSALS, expected=2)
    keys = {record.key.decode() for record in records}
    assert keys == {accepted["id"], str(second.pk)}
    assert {json.loads(r.value)["type"] for r in records} == {"kernel.proposal.pending"}
