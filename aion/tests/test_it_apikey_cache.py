"""The principal cache: a database API key is looked up once per AION_API_KEY_CACHE_SECONDS, and revocation still bites.

- within the TTL, repeated requests with one key cost no key lookup;
- revoking or rotating through the service clears this process's cache when the transaction commits;
- a revocation this process did not make (another replica's) is honoured within the TTL, the documented bound;
- a key is never cached past its own expiry.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aion.auth import keys
from aion.auth.principal import system_principal
from aion.auth.services import revoke_api_key, rotate_api_key
from aion.models import ApiKey
from aion.roles import Role
from aion.testing.factories import TENANT, api_client, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    keys.forget_cached_principals()
    yield
    keys.forget_cached_principals()


def key_lookups(queries: CaptureQueriesContext) -> int:
    return sum(1 for q in queries.captured_queries if 'FROM "aion_apikey"' in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT"))


def test_repeated_requests_with_one_key_look_it_up_once(settings):
    settings.AION_API_KEY_CACHE_SECONDS = 60
    raw, _ = make_api_key([Role.AUDITOR])
    client = api_client(raw)
    with CaptureQueriesContext(connection) as queries:
        assert [client.get("/v1/whoami").status_code for _ in range(10)] == [200] * 10
    assert key_lookups(queries) == 1


def test_a_revoke_through_the_service_stops_the_key_at_once(settings, django_capture_on_commit_callbacks):
    settings.AION_API_KEY_CACHE_SECONDS = 60
    raw, key = make_api_key([Role.AUDITOR])
    assert api_client(raw).get("/v1/whoami").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        revoke_api_key(key.prefix, actor=system_principal(TENANT))
    assert api_client(raw).get("/v1/whoami").status_code == 401


def test_a_rotation_clears_the_cache_so_the_grace_period_is_the_new_truth(settings, django_capture_on_commit_callbacks):
    settings.AION_API_KEY_CACHE_SECONDS = 60
    raw, key = make_api_key([Role.AUDITOR])
    assert api_client(raw).get("/v1/whoami").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        new_raw, _ = rotate_api_key(key.prefix, actor=system_principal(TENANT), grace=timedelta(0))
    assert api_client(raw).get("/v1/whoami").status_code == 401
    assert api_client(new_raw).get("/v1/whoami").status_code == 200


def test_a_revocation_by_another_process_is_honoured_within_the_ttl(settings):
    settings.AION_API_KEY_CACHE_SECONDS = 0.5
    raw, key = make_api_key([Role.AUDITOR])
    assert api_client(raw).get("/v1/whoami").status_code == 200
    # Another replica revokes: this process's cache is not told, only the row changes.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    revoked_at = time.monotonic()
    deadline = revoked_at + 5
    while api_client(raw).get("/v1/whoami").status_code == 200:
        assert time.monotonic() < deadline, "the revoked key kept working past the bound"
        time.sleep(0.05)
    assert time.monotonic() - revoked_at <= 0.5 + 0.5  # the TTL, plus scheduling slack


def test_a_key_is_never_cached_past_its_own_expiry(settings):
    settings.AION_API_KEY_CACHE_SECONDS = 60
    raw, _ = make_api_key([Role.AUDITOR], expires_at=timezone.now() + timedelta(seconds=0.6))
    assert api_client(raw).get("/v1/whoami").status_code == 200
    deadline = time.monotonic() + 5
    while api_client(raw).get("/v1/whoami").status_code == 200:
        assert time.monotonic() < deadline, "the expired key kept working from the cache"
        time.sleep(0.05)
