"""The inbound-hook lockout: failures count per (claimed tenant, IP) and never refuse a correctly signed hook.

A forger behind the same NAT as a real sender (same source IP) can fill the failure counters, but the real
sender's correctly signed hooks still act; only failing hooks get the 429 (and record nothing more). A down
counter store or limiter is a 503 with Retry-After (docs/webhooks.md, "Lockout").
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from aion.models import SecurityIncident
from aion.testing.factories import OTHER_TENANT, TENANT
from aion.testing.hook_requests import ACME_SECRET, GLOBEX_SECRET, approval_body, post_hook, signed_headers, submit_proposal
from aion.testing.services import free_port

pytestmark = pytest.mark.django_db

NAT = "198.51.100.20"  # the forger and the real sender share this public address


@pytest.fixture()
def low_failure_limit(settings):
    settings.AION_RATE_LIMITS = {**settings.AION_RATE_LIMITS, "hook_failures": "3/60"}
    settings.AION_RATE_LIMIT_IP_FACTOR = 10
    return settings


def _forge(body: bytes, tenant: str = TENANT, ip: str = NAT):
    return post_hook(body, **signed_headers(body, secrets=["forged"], tenant=tenant), REMOTE_ADDR=ip)


def test_a_forger_behind_the_same_nat_cannot_lock_out_the_real_sender(low_failure_limit):
    proposal = submit_proposal()
    body = approval_body(proposal.pk)
    assert [_forge(body).status_code for _ in range(3)] == [401, 401, 401]
    refused = _forge(body)
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert SecurityIncident.objects.count() == 3  # past the limit a forgery records nothing more

    genuine = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]), REMOTE_ADDR=NAT)
    assert genuine.status_code == 200, genuine.content
    assert genuine.json()["decision"] == "approve"


def test_failures_claiming_another_tenant_do_not_count_against_this_one(low_failure_limit):
    body = approval_body(submit_proposal(tenant=OTHER_TENANT).pk)
    assert [_forge(body, tenant=OTHER_TENANT).status_code for _ in range(4)] == [401, 401, 401, 429]
    # The (acme, NAT) pair has its own counter: a failing acme hook is still verified and recorded (401).
    assert _forge(body, tenant=TENANT).status_code == 401
    # And globex's own correctly signed hook from the NAT still acts.
    genuine = post_hook(body, **signed_headers(body, secrets=[GLOBEX_SECRET], tenant=OTHER_TENANT), REMOTE_ADDR=NAT)
    assert genuine.status_code == 200, genuine.content


def test_rotating_claimed_tenants_hits_the_address_ceiling(low_failure_limit):
    low_failure_limit.AION_RATE_LIMIT_IP_FACTOR = 2  # the IP bucket is 2 x 3 = 6 failures
    body = approval_body("00000000-0000-0000-0000-000000000000")
    answers = [_forge(body, tenant=f"made-up-{n}").status_code for n in range(7)]
    assert answers == [401] * 6 + [429]
    assert _forge(body, tenant="made-up-new", ip="198.51.100.21").status_code == 401  # another address is not affected


def test_a_down_failure_counter_is_503_with_retry_after_for_failing_hooks_only(low_failure_limit):
    closed = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
                          "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}  # fmt: skip
    proposal = submit_proposal()
    body = approval_body(proposal.pk)
    with override_settings(CACHES=closed):
        refused = _forge(body)
        assert refused.status_code == 503
        assert refused.json()["type"] == "urn:aion:problem:rate-limiter-unavailable"
        assert int(refused["Retry-After"]) >= 1
        # A correctly signed hook never reads the failure counter.
        genuine = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]), REMOTE_ADDR=NAT)
        assert genuine.status_code == 200, genuine.content


def test_a_down_route_limiter_is_503_with_retry_after(low_failure_limit):
    proposal = submit_proposal()
    body = approval_body(proposal.pk)
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", AION_REDIS_TIMEOUT_SECONDS=0.2):
        refused = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]), REMOTE_ADDR=NAT)
    assert refused.status_code == 503
    assert refused.json()["type"] == "urn:aion:problem:rate-limiter-unavailable"
    assert int(refused["Retry-After"]) >= 1
