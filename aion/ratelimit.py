"""Fail-closed rate limiting for every DRF view: GCRA in one Redis Lua script, per credential and per IP.

``GatewayThrottle`` is in DRF's ``DEFAULT_THROTTLE_CLASSES`` so every API view
is limited without declaring anything. The route class comes from the view's
``rate_limit_class`` (a key of ``settings.AION_RATE_LIMITS``), else ``write``
for unsafe methods and ``default`` for safe ones. Both the credential and the
client IP (``aion.clientip.client_ip``: forwarded addresses only from
AION_TRUSTED_PROXIES) are checked atomically in one script call; the tighter one decides.

When Redis is configured but unreachable the limiter fails closed: a 503
problem with ``Retry-After`` whose detail says the limiter is unavailable (a
down dependency, as everywhere on the platform; runbook "Redis & Kafka
Recovery"). With no REDIS_URL an in-process limiter is used (single process
only: each process counts on its own). ``RateLimitHeadersMiddleware`` copies
the decision to ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` on the response.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from aion.clientip import client_ip
from aion.problems import Problem

logger = logging.getLogger("aion.ratelimit")

RATE_LIMIT_REJECTIONS = Counter("aion_rate_limit_rejections_total", "Requests refused by the rate limiter", ["route_class", "reason"])

EXEMPT = "exempt"  # rate_limit_class for views that must never be limited


class LimiterUnavailable(RuntimeError):
    """The configured limiter backend (Redis) could not answer."""


@dataclass(frozen=True)
class Rate:
    count: int
    period_seconds: int

    @property
    def emission_us(self) -> int:
        """The emission interval in whole microseconds: GCRA runs on integers, so no float rounding can
        turn a first request into a refusal or make ``RateLimit-Remaining`` depend on the clock's value."""
        return max(1, self.period_seconds * 1_000_000 // self.count)

    @property
    def tolerance_us(self) -> int:
        return self.emission_us * self.count


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after_seconds: int  # until the next request would pass (0 when allowed)

    def headers(self) -> dict[str, str]:
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining), "RateLimit-Reset": str(self.reset_seconds)}
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.retry_after_seconds))
        return out


def parse_rate(spec: str, name: str = "rate") -> Rate:
    """``"<count>/<seconds>"``, e.g. ``"600/60"``."""
    try:
        count_text, period_text = spec.split("/", 1)
        rate = Rate(int(count_text), int(period_text))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must look like <count>/<seconds>, got {spec!r}") from exc
    if rate.count < 1 or rate.period_seconds < 1:
        raise ImproperlyConfigured(f"{name} must have a positive count and period, got {spec!r}")
    return rate


def rate_for(route_class: str) -> Rate:
    limits: dict[str, str] = settings.AION_RATE_LIMITS
    spec = limits.get(route_class) or limits["default"]
    return parse_rate(spec, f"AION_RATE_LIMITS[{route_class!r}]")


# GCRA over several keys at once: allowed only when every key allows, and only then is any key updated.
# The keys share a hash tag (see bucket_key), so the script also runs on Redis Cluster.
# KEYS: bucket keys. ARGV: per key, its emission interval (us) then its burst tolerance (us), whole numbers. Time comes from
# Redis itself so every web process agrees. All arithmetic is on integer microseconds (exact in Lua's doubles up to 2^53,
# stored with %d), so the answer never depends on rounding. Returns {allowed, min remaining, max reset us, max retry us}.
_GCRA_LUA = """
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) * 1000000 + tonumber(now_t[2])
local allowed = 1
local retry_after = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local emission = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local allow_at = tat + emission - tolerance
  if now < allow_at then
    allowed = 0
    if allow_at - now > retry_after then retry_after = allow_at - now end
  end
end
local remaining = -1
local reset = 0
for i, key in ipairs(KEYS) do
  local emission = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tats[i]
  if allowed == 1 then
    tat = tat + emission
    redis.call('SET', key, string.format('%d', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
  local left = math.floor((tolerance - (tat - now)) / emission)
  if left < 0 then left = 0 end
  if remaining < 0 or left < remaining then remaining = left end
  if tat - now > reset then reset = tat - now end
end
return {allowed, remaining, math.ceil(reset), math.ceil(retry_after)}
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=settings.AION_REDIS_TIMEOUT_SECONDS,
            socket_timeout=settings.AION_REDIS_TIMEOUT_SECONDS,
        )
        self.script = self.client.register_script(_GCRA_LUA)

    def hit(self, buckets: list[tuple[str, Rate]]) -> Decision:
        import redis

        args: list[int] = []
        for _, rate in buckets:
            args += [rate.emission_us, rate.tolerance_us]
        try:
            allowed, remaining, reset_us, retry_us = self.script(keys=[key for key, _ in buckets], args=args)
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return Decision(
            allowed=bool(int(allowed)),
            limit=buckets[0][1].count,
            remaining=int(remaining),
            reset_seconds=math.ceil(int(reset_us) / 1_000_000),
            retry_after_seconds=math.ceil(int(retry_us) / 1_000_000),
        )


class InProcessLimiter:
    """The same GCRA in memory, for the embedded default (single process only)."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.clock = clock  # nanoseconds; tests inject their own
        self.lock = threading.Lock()
        self.tats: dict[str, int] = {}

    def hit(self, buckets: list[tuple[str, Rate]]) -> Decision:
        with self.lock:
            now = self.clock() // 1000  # whole microseconds: exact integer GCRA, as in the Lua script
            tats = {key: max(self.tats.get(key, now), now) for key, _ in buckets}
            retry = max(tats[key] + rate.emission_us - rate.tolerance_us - now for key, rate in buckets)
            allowed = retry <= 0
            if allowed:
                for key, rate in buckets:
                    tats[key] += rate.emission_us
                    self.tats[key] = tats[key]
            if len(self.tats) > 100_000:  # drop full buckets so memory stays bounded
                self.tats = {k: v for k, v in self.tats.items() if v > now}
        remaining = min(max(0, (rate.tolerance_us - (tats[key] - now)) // rate.emission_us) for key, rate in buckets)
        reset = max(tats[key] - now for key, _ in buckets)
        return Decision(allowed, buckets[0][1].count, remaining, math.ceil(reset / 1_000_000), math.ceil(max(retry, 0) / 1_000_000))


_limiters: dict[str, Any] = {}
_limiters_lock = threading.Lock()


def limiter() -> RedisLimiter | InProcessLimiter:
    """The limiter for the current settings (Redis when REDIS_URL is set)."""
    url = settings.REDIS_URL or ""
    with _limiters_lock:
        if url not in _limiters:
            _limiters[url] = RedisLimiter(url) if url else InProcessLimiter()
        return _limiters[url]  # type: ignore[no-any-return]


def route_class_for(request: Any, view: Any) -> str:
    declared = getattr(view, "rate_limit_class", None)
    if declared:
        return str(declared)
    return "default" if request.method in SAFE_METHODS else "write"


def key_prefix() -> str:
    return settings.AION_RATE_LIMIT_KEY_PREFIX


def bucket_key(route_class: str, kind: str, identity: str) -> str:
    """``{<prefix>:<route class>}:<kind>:<identity>``.

    The braces are a Redis Cluster hash tag: every bucket of one route class
    lives in one slot, so the credential and IP buckets that one Lua call
    touches always share a slot (Cluster refuses a script whose keys do not).
    The cost is that each route class is served by one shard.
    """
    return f"{{{key_prefix()}:{route_class}}}:{kind}:{identity}"


def check(route_class: str, credential: str | None, ip: str) -> Decision:
    """One atomic decision over the credential's bucket and the client IP's (AION_RATE_LIMIT_IP_FACTOR times larger)."""
    rate = rate_for(route_class)
    buckets: list[tuple[str, Rate]] = []
    if credential:
        buckets.append((bucket_key(route_class, "cred", credential), rate))
    ip_rate = Rate(rate.count * settings.AION_RATE_LIMIT_IP_FACTOR, rate.period_seconds)
    buckets.append((bucket_key(route_class, "ip", ip), ip_rate if credential else rate))
    return limiter().hit(buckets)


def unavailable_problem(route_class: str) -> Problem:
    RATE_LIMIT_REJECTIONS.labels(route_class, "limiter_unavailable").inc()
    return Problem(
        503,
        "The rate limiter is unavailable, so this route is refusing requests (fail closed). Retry shortly.",
        slug="rate-limiter-unavailable",
        headers={"Retry-After": "5"},
    )


class GatewayThrottle(BaseThrottle):
    """DRF throttle applied to every view (after authentication, so the credential is known)."""

    def allow_request(self, request: Any, view: Any) -> bool:
        route_class = route_class_for(request, view)
        if route_class == EXEMPT:
            return True
        credential = None
        principal = getattr(request, "user", None)
        if principal is not None and getattr(principal, "is_authenticated", False):
            credential = str(getattr(principal, "subject", None) or principal)
        try:
            decision = check(route_class, credential, client_ip(request))
        except LimiterUnavailable as exc:
            logger.warning("rate limiter unavailable; failing closed", extra={"error": str(exc), "route_class": route_class})
            raise unavailable_problem(route_class) from exc
        # Stashed on the Django request; RateLimitHeadersMiddleware puts it on the response.
        request._request.aion_rate_limit = decision
        if not decision.allowed:
            RATE_LIMIT_REJECTIONS.labels(route_class, "limit").inc()
            raise Problem(
                429,
                f"Rate limit for {route_class!r} routes exceeded; retry in {max(1, decision.retry_after_seconds)} s.",
                slug="rate-limited",
                headers=decision.headers(),
                route_class=route_class,
            )
        return True


class RateLimitHeadersMiddleware:
    """Adds RateLimit-* headers to any response whose request went through the limiter."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision: Decision | None = getattr(request, "aion_rate_limit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                if name not in response:
                    response[name] = value
        return response
