"""Inbound delivery ids: duplicates replay the first response and act once, also when racing (real threads)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from aion.testing.factories import TENANT
from aion.testing.hook_requests import ACME_SECRET, approval_body, post_hook, signed_headers, submit_proposal
from hooks.models import InboundDelivery


def use_redis_database_3(settings: Any, redis_url: str) -> Any:
    import redis

    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") >= 3 else redis_url.rstrip("/")
    settings.AION_IDEMPOTENCY_REDIS_URL = f"{base}/3"
    return redis.Redis.from_url(settings.AION_IDEMPOTENCY_REDIS_URL)


@pytest.fixture(params=["database", "redis"])
def store(request: Any, settings: Any) -> Any:
    """Each test runs against the database claim and the Redis (database 3) SET NX claim."""
    if request.param == "database":
        yield None
        return
    client = use_redis_database_3(settings, request.getfixturevalue("redis_url"))
    yield client
    for key in client.scan_iter(f"{settings.AION_HOOKS_IDEMPOTENCY_PREFIX}*"):
        client.delete(key)


@pytest.mark.django_db
def test_a_duplicate_delivery_returns_the_first_response_and_does_not_act_again(store, settings):
    proposal = submit_proposal()
    body = approval_body(proposal.pk, "approve")
    headers = signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-dup")
    first = post_hook(body, **headers)
    assert first.status_code == 200 and "Idempotent-Replay" not in first
    # a re-signed copy (new timestamp) of the same delivery id
    second = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-dup"))
    assert second.status_code == 200
    assert second["Idempotent-Replay"] == "true"
    assert second.json() == first.json()
    assert proposal.approvals.count() == 1
    record = InboundDelivery.objects.get(delivery_id="dlv-dup")
    assert record.completed and record.response_body == first.json() and record.source_name == "chatops"
    if store is not None:
        keys = list(store.scan_iter(f"{settings.AION_HOOKS_IDEMPOTENCY_PREFIX}*"))
        assert len(keys) == 1
        assert 0 < store.ttl(keys[0]) <= 24 * 3600


@pytest.mark.django_db
def test_a_refused_first_response_is_replayed_unchanged(store):
    proposal = submit_proposal()
    reject = approval_body(proposal.pk, "reject", comment="no")
    assert post_hook(reject, **signed_headers(reject, secrets=[ACME_SECRET])).status_code == 200
    body = approval_body(proposal.pk, "approve")
    first = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-late"))
    again = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-late"))
    assert first.status_code == again.status_code == 409
    assert again.json() == first.json() and again["Idempotent-Replay"] == "true"


@pytest.mark.django_db
def test_the_same_delivery_id_in_another_tenant_is_a_different_delivery(store, settings):
    from aion.testing.factories import OTHER_TENANT
    from aion.testing.hook_requests import GLOBEX_SECRET

    mine, theirs = submit_proposal(), submit_proposal(tenant=OTHER_TENANT)
    body = approval_body(mine.pk)
    assert post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="shared-id")).status_code == 200
    body = approval_body(theirs.pk)
    response = post_hook(body, **signed_headers(body, secrets=[GLOBEX_SECRET], tenant=OTHER_TENANT, delivery="shared-id"))
    assert response.status_code == 200 and "Idempotent-Replay" not in response


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_act_once(store):
    proposal = submit_proposal()
    body = approval_body(proposal.pk, "approve")
    copies = 6
    barrier = threading.Barrier(copies)
    results: list[Any] = []
    lock = threading.Lock()

    def send() -> None:
        headers = signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-race")
        barrier.wait()
        try:
            response = post_hook(body, **headers)
            with lock:
                results.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == copies
    assert [r.status_code for r in results] == [200] * copies, [r.content for r in results]
    assert sum(1 for r in results if "Idempotent-Replay" not in r) == 1
    assert len({r.content for r in results}) == 1
    proposal.refresh_from_db()
    assert proposal.approvals.count() == 1 and proposal.state == "applied"
    assert InboundDelivery.objects.filter(tenant_id=TENANT, delivery_id="dlv-race").count() == 1


@pytest.mark.django_db
def test_redis_unreachable_fails_closed_with_503(settings):
    settings.AION_IDEMPOTENCY_REDIS_URL = "redis://127.0.0.1:1/3"
    proposal = submit_proposal()
    body = approval_body(proposal.pk)
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]))
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/problem+json")
    proposal.refresh_from_db()
    assert proposal.state == "pending"
