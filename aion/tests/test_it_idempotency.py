"""Idempotency-Key on unsafe requests: replay, conflicting replay (422), in-flight duplicate (409), store down (503).

Runs on the in-process store and on the machine's real Redis (database 3).
"""

from __future__ import annotations

import threading

import pytest
from django.test import override_settings

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client, make_api_key
from aion.testing.redis_proxy import redis_db_url
from aion.testing.services import free_port
from aion.tests.gateway_urls import ProbeView

PROBE = "/v1/test/probe"


@pytest.fixture()
def probe_urls(gateway_isolation):
    with override_settings(ROOT_URLCONF="aion.tests.gateway_urls"):
        yield


def _post(client, body, key="key-1", **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(PROBE, body, format="json", **headers, **extra)


def _probe_records():
    return AuditRecord.objects.filter(action="probe.created").count()


def _replay_contract(client):
    first = _post(client, {"name": "alpha"})
    assert first.status_code == 201
    assert "Idempotent-Replay" not in first
    replay = _post(client, {"name": "alpha"})
    assert replay.status_code == 201
    assert replay["Idempotent-Replay"] == "true"
    assert replay.json() == first.json()
    assert replay["Location"] == first["Location"]
    assert replay["Content-Type"] == first["Content-Type"]
    assert _probe_records() == 1  # the change happened once

    conflicting = _post(client, {"name": "beta"})
    assert conflicting.status_code == 422
    assert conflicting.json()["type"] == "urn:aion:problem:idempotency-key-reused"
    assert _probe_records() == 1


@pytest.mark.django_db
def test_replay_and_conflicting_replay_in_process(probe_urls):
    raw, _ = make_api_key([Role.KERNEL_PROPOSER])
    with override_settings(AION_IDEMPOTENCY_REDIS_URL=None):
        _replay_contract(api_client(raw))


@pytest.mark.django_db
def test_replay_on_redis_database_3_with_ttl(probe_urls, redis_url, redis_cleanup, gateway_isolation):
    import redis

    redis_cleanup.append(gateway_isolation)
    store_url = redis_db_url(redis_url, 3)
    raw, _ = make_api_key([Role.KERNEL_PROPOSER])
    with override_settings(AION_IDEMPOTENCY_REDIS_URL=store_url, AION_IDEMPOTENCY_TTL_SECONDS=24 * 3600):
        _replay_contract(api_client(raw))
    keys = list(redis.Redis.from_url(store_url).scan_iter(match=f"{gateway_isolation}:idem:*"))
    assert len(keys) == 1
    assert b":acme:" in keys[0]  # the tenant is part of the key
    ttl = redis.Redis.from_url(store_url).ttl(keys[0])
    assert 24 * 3600 - 60 < ttl <= 24 * 3600


@pytest.mark.django_db
def test_keys_are_scoped_to_the_credential_and_tenant(probe_urls):
    owner, _ = make_api_key([Role.KERNEL_PROPOSER])
    teammate, _ = make_api_key([Role.KERNEL_PROPOSER])
    outsider, _ = make_api_key([Role.KERNEL_PROPOSER], tenant=OTHER_TENANT)
    assert _post(api_client(owner), {"n": 1}).status_code == 201
    for other in (teammate, outsider):
        answer = _post(api_client(other), {"n": 1})
        assert answer.status_code == 201
        assert "Idempotent-Replay" not in answer
    assert _probe_records() == 3


@pytest.mark.django_db(transaction=True)
def test_duplicate_while_the_first_is_in_flight_gets_409(probe_urls):
    raw, _ = make_api_key([Role.KERNEL_PROPOSER])
    gate, entered = threading.Event(), threading.Event()
    ProbeView.gate, ProbeView.entered = gate, entered
    results = {}
    try:
        worker = threading.Thread(target=lambda: results.setdefault("first", _post(api_client(raw), {"slow": True})))
        worker.start()
        assert entered.wait(10)
        ProbeView.entered = None
        duplicate = _post(api_client(raw), {"slow": True})
        assert duplicate.status_code == 409
        assert duplicate.json()["type"] == "urn:aion:problem:idempotency-in-flight"
    finally:
        gate.set()
        worker.join(10)
        ProbeView.gate = ProbeView.entered = None
    assert results["first"].status_code == 201
    replay = _post(api_client(raw), {"slow": True})
    assert replay["Idempotent-Replay"] == "true"
    assert _probe_records() == 1


@pytest.mark.django_db
def test_server_errors_are_not_stored_so_the_key_can_be_retried(probe_urls):
    raw, _ = make_api_key([Role.KERNEL_PROPOSER])
    client = api_client(raw)
    failed = _post(client, {"explode": True}, key="retry-me")
    assert failed.status_code == 500
    assert failed["Content-Type"].startswith("application/problem+json")
    again = _post(client, {"explode": True}, key="retry-me")
    assert again.status_code == 500
    assert "Idempotent-Replay" not in again


@pytest.mark.django_db
def test_store_down_fails_closed_with_503_only_for_keyed_requests(probe_urls):
    raw, _ = make_api_key([Role.KERNEL_PROPOSER])
    with override_settings(AION_IDEMPOTENCY_REDIS_URL=f"redis://127.0.0.1:{free_port()}/3", AION_REDIS_TIMEOUT_SECONDS=0.2):
        refused = _post(api_client(raw), {"n": 1})
        assert refused.status_code == 503
        assert refused.json()["type"] == "urn:aion:problem:idempotency-store-unavailable"
        assert _probe_records() == 0
        assert _post(api_client(raw), {"n": 1}, key=None).status_code == 201


@pytest.mark.django_db
def test_malformed_key_and_unauthenticated_requests(probe_urls):
    raw, _ = make_api_key([Role.KERNEL_PROPOSER])
    bad = _post(api_client(raw), {"n": 1}, key="x" * 300)
    assert bad.status_code == 400
    assert bad["Content-Type"].startswith("application/problem+json")
    # Without a credential the view's own 401 wins; the key is not consumed.
    assert _post(api_client(), {"n": 1}).status_code == 401
    wrong_role, _ = make_api_key([Role.MEMORY_READER])
    assert _post(api_client(wrong_role), {"n": 1}).status_code == 403
    assert _post(api_client(raw), {"n": 1}).status_code == 201


@pytest.mark.django_db
def test_transient_refusals_are_not_stored(probe_urls, gateway_isolation):
    from django.test import override_settings

    raw, _ = make_api_key([Role.KERNEL_PROPOSER])
    client = api_client(raw)
    with override_settings(AION_RATE_LIMITS={"default": "100/60", "write": "1/60"}):
        assert _post(client, {"n": 1}, key="a").status_code == 201
        limited = _post(client, {"n": 2}, key="b")
        assert limited.status_code == 429
    # Once the limit allows it, the same key runs for real instead of replaying the 429.
    retried = _post(client, {"n": 2}, key="b")
    assert retried.status_code == 201 and "Idempotent-Replay" not in retried


def test_the_store_defaults_to_database_3_of_redis_for_24_hours(settings_from_env):
    loaded = settings_from_env(REDIS_URL="redis://redis:6379/0")
    assert loaded["AION_IDEMPOTENCY_REDIS_URL"] == "redis://redis:6379/3"
    assert loaded["AION_IDEMPOTENCY_TTL_SECONDS"] == 24 * 3600
    assert settings_from_env(REDIS_URL="redis://redis:6379/0", AION_IDEMPOTENCY_TTL_SECONDS="3600")["AION_IDEMPOTENCY_TTL_SECONDS"] == 3600
    assert not settings_from_env()["AION_IDEMPOTENCY_REDIS_URL"]  # no Redis: the in-process store
