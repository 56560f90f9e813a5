"""Rate limiting: GCRA per credential and per IP, RateLimit-* headers, and failing closed (503) without Redis.

Runs against the in-process limiter and against the machine's real Redis
(``redis_url``); "Redis down" is a closed port, or a real TCP relay to Redis
that the test cuts mid-run.
"""

from __future__ import annotations

import threading

import pytest
from django.test import Client, override_settings

from aion import ratelimit
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client, make_api_key
from aion.testing.services import free_port

pytestmark = pytest.mark.django_db

LOW = {"default": "3/60", "write": "2/60", "ingest": "5/60", "hooks": "3/60", "hook_failures": "3/60", "auth_failures": "3/60"}


@pytest.fixture()
def low_limits(gateway_isolation):
    with override_settings(AION_RATE_LIMITS=LOW, AION_RATE_LIMIT_IP_FACTOR=10, ROOT_URLCONF="aion.tests.gateway_urls"):
        yield


def _exhaust_whoami(client, limit=3):
    answers = [client.get("/v1/whoami") for _ in range(limit + 1)]
    return answers


def _assert_limited_sequence(answers):
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert all(a["RateLimit-Limit"] == "3" for a in answers)
    refused = answers[3]
    assert refused["Content-Type"].startswith("application/problem+json")
    assert refused.json()["type"] == "urn:aion:problem:rate-limited"
    assert int(refused["Retry-After"]) >= 1
    assert int(refused["RateLimit-Reset"]) >= 1


def test_in_process_limiter_limits_per_credential_with_headers(low_limits):
    owner, _ = make_api_key([Role.AUDITOR])
    teammate, _ = make_api_key([Role.AUDITOR])
    _assert_limited_sequence(_exhaust_whoami(api_client(owner)))
    # Another credential on the same IP has its own bucket (the IP bucket is 10x larger).
    assert api_client(teammate).get("/v1/whoami").status_code == 200


def test_ip_bucket_limits_all_credentials_of_one_address(low_limits):
    with override_settings(AION_RATE_LIMIT_IP_FACTOR=1):
        first, _ = make_api_key([Role.AUDITOR])
        second, _ = make_api_key([Role.AUDITOR], tenant=OTHER_TENANT)
        assert [api_client(first).get("/v1/whoami").status_code for _ in range(3)] == [200] * 3
        assert api_client(second).get("/v1/whoami").status_code == 429
        # A different client IP is a different bucket.
        assert api_client(second).get("/v1/whoami", REMOTE_ADDR="10.9.8.7").status_code == 200


def test_route_classes_have_their_own_limits(low_limits):
    raw, _ = make_api_key([Role.MEMORY_WRITER, Role.KERNEL_PROPOSER])
    client = api_client(raw)
    ingest = [client.post("/v1/test/ingest-probe", {}, format="json") for _ in range(6)]
    assert [r.status_code for r in ingest] == [200] * 5 + [429]
    assert ingest[0]["RateLimit-Limit"] == "5"
    # Unsafe methods without a declared class use "write" (2/60), counted apart from "ingest".
    writes = [client.post("/v1/test/probe", {"n": i}, format="json") for i in range(3)]
    assert [r.status_code for r in writes] == [201, 201, 429]


def test_unauthenticated_calls_are_401_not_counted_as_a_credential(low_limits):
    response = api_client().get("/v1/whoami")
    assert response.status_code == 401


def test_redis_limiter_is_atomic_and_sets_headers(low_limits, redis_url, redis_cleanup, gateway_isolation):
    redis_cleanup.append(gateway_isolation)
    with override_settings(REDIS_URL=redis_url):
        raw, _ = make_api_key([Role.AUDITOR])
        _assert_limited_sequence(_exhaust_whoami(api_client(raw)))

        # 60 concurrent hits on one bucket of 20: exactly 20 pass (the Lua script is atomic).
        allowed = []
        with override_settings(AION_RATE_LIMITS={**LOW, "default": "20/60"}):

            def hit():
                decision = ratelimit.check("default", "cred:race", "203.0.113.9")
                allowed.append(decision.allowed)

            threads = [threading.Thread(target=hit) for _ in range(60)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert allowed.count(True) == 20


def test_redis_unreachable_fails_closed_but_health_and_metrics_answer(low_limits):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(REDIS_URL=closed, AION_REDIS_TIMEOUT_SECONDS=0.2):
        raw, _ = make_api_key([Role.AUDITOR])
        refused = api_client(raw).get("/v1/whoami")
        assert refused.status_code == 503  # a down dependency, with Retry-After
        problem = refused.json()
        assert problem["type"] == "urn:aion:problem:rate-limiter-unavailable"
        assert "unavailable" in problem["detail"]
        assert refused["Retry-After"]

        plain = Client()
        assert plain.get("/healthz").status_code == 200
        assert plain.get("/metrics").status_code == 200
        ready = plain.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["dependencies"]["cache"]["status"] == "down"


def test_redis_killed_mid_run_fails_closed_then_recovers(low_limits, redis_proxy, redis_cleanup, gateway_isolation):
    redis_cleanup.append(gateway_isolation)
    with override_settings(REDIS_URL=redis_proxy.url, AION_REDIS_TIMEOUT_SECONDS=0.3):
        raw, _ = make_api_key([Role.AUDITOR])
        client = api_client(raw)
        assert client.get("/v1/whoami").status_code == 200

        redis_proxy.stop()  # every open connection is cut and nothing listens any more
        refused = client.get("/v1/whoami")
        assert refused.status_code == 503 and refused["Retry-After"]
        assert refused.json()["type"] == "urn:aion:problem:rate-limiter-unavailable"
        assert Client().get("/healthz").status_code == 200

        redis_proxy.start()  # same port: Redis is back
        recovered = client.get("/v1/whoami")
        assert recovered.status_code == 200
        assert recovered["RateLimit-Remaining"] == "1"  # the bucket survived in Redis


def test_readyz_says_the_embedded_limiter_is_in_process():
    with override_settings(REDIS_URL=None):
        cache = Client().get("/readyz").json()["dependencies"]["cache"]
    assert cache["status"] == "disabled"
    assert "in-process" in cache["detail"]


def test_in_process_gcra_refills_over_time():
    now = [1000 * 10**9]  # the injected clock, in nanoseconds
    limiter = ratelimit.InProcessLimiter(clock=lambda: now[0])
    rate = ratelimit.Rate(2, 10)
    bucket = [("k", rate)]
    assert [limiter.hit(bucket).allowed for _ in range(3)] == [True, True, False]
    now[0] += 5 * 10**9  # one emission interval later, exactly one more request fits
    assert limiter.hit(bucket).allowed is True
    assert limiter.hit(bucket).allowed is False


# Clock readings of every magnitude a host's monotonic clock shows (just booted to a year up), plus odd offsets:
# with float milliseconds some of these turned "now + E - E" into more than "now", refusing a first request, or
# made RateLimit-Remaining read 1 instead of 2 (the flaky test_in_process_limiter_limits_per_credential_with_headers).
CLOCK_READINGS_NS = [10**k + offset for k in range(9, 17) for offset in (0, 1, 123_456_789, 987_654_321_123 % 10**k, 10**k // 3)]


@pytest.mark.parametrize("rate", [ratelimit.Rate(3, 60), ratelimit.Rate(1, 60), ratelimit.Rate(7, 60), ratelimit.Rate(600, 60)])
def test_in_process_answers_do_not_depend_on_the_clock_reading(rate):
    for reading in CLOCK_READINGS_NS:
        limiter = ratelimit.InProcessLimiter(clock=lambda reading=reading: reading)
        buckets = [("cred", rate), ("ip", ratelimit.Rate(rate.count * 10, rate.period_seconds))]
        decisions = [limiter.hit(buckets) for _ in range(rate.count + 1)]
        assert [d.allowed for d in decisions] == [True] * rate.count + [False], reading
        assert [d.remaining for d in decisions[: rate.count]] == list(range(rate.count - 1, -1, -1)), reading
        assert decisions[-1].retry_after_seconds >= 1


def test_redis_answers_do_not_depend_on_the_clock_reading(redis_url, gateway_isolation):
    """The same property on the real Redis script, whose clock is Redis TIME: 100 fresh buckets in a row."""
    with override_settings(REDIS_URL=redis_url):
        limiter = ratelimit.RedisLimiter(redis_url)
        for i in range(100):
            bucket = [(ratelimit.bucket_key("default", "cred", f"clock-{i}"), ratelimit.Rate(3, 60))]
            assert [limiter.hit(bucket).remaining for _ in range(3)] == [2, 1, 0]
            assert limiter.hit(bucket).allowed is False
            one = [(ratelimit.bucket_key("write", "cred", f"clock-{i}"), ratelimit.Rate(1, 60))]
            assert limiter.hit(one).allowed is True


def test_one_call_touches_keys_of_one_cluster_slot(low_limits, redis_cluster_node, gateway_isolation):
    """On a real cluster-mode Redis: the credential and IP buckets share a hash tag, so the Lua script runs."""
    import redis
    from redis.crc import key_slot

    with override_settings(REDIS_URL=redis_cluster_node):
        decision = ratelimit.check("default", "key:aion_0000", "203.0.113.9")
        assert decision.allowed and decision.remaining == 2
        keys = [ratelimit.bucket_key("default", "cred", "key:aion_0000"), ratelimit.bucket_key("default", "ip", "203.0.113.9")]
        assert keys[0].startswith(f"{{{gateway_isolation}:rl:default}}:")
        assert key_slot(keys[0].encode()) == key_slot(keys[1].encode())
        client = redis.Redis.from_url(redis_cluster_node)
        assert all(client.exists(key) for key in keys)

        # Without the shared tag, Cluster refuses the very same script: this is what the tag prevents.
        untagged = [f"{gateway_isolation}:default:cred:key:aion_0000", f"{gateway_isolation}:default:ip:203.0.113.9"]
        assert key_slot(untagged[0].encode()) != key_slot(untagged[1].encode())
        with pytest.raises(redis.ResponseError, match="same slot"):  # CROSSSLOT
            ratelimit.limiter().script(keys=untagged, args=[20000, 60000, 2000, 6000])  # type: ignore[union-attr]
        client.close()


def test_each_route_class_limit_is_set_by_its_own_variable(settings_from_env):
    defaults = settings_from_env()["AION_RATE_LIMITS"]
    assert defaults["default"] == "600/60" and defaults["write"] == "120/60"
    limits = settings_from_env(AION_RATE_LIMIT_INGEST="7/30", AION_RATE_LIMIT_WRITE="9/10")["AION_RATE_LIMITS"]
    assert limits["ingest"] == "7/30" and limits["write"] == "9/10"
    assert limits["default"] == defaults["default"] and limits["hooks"] == defaults["hooks"]
    with pytest.raises(Exception, match="AION_RATE_LIMIT_HOOKS"):
        settings_from_env(AION_RATE_LIMIT_HOOKS="fast")
