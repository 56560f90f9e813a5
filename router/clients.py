"""Calls to targets: module hosts (``POST {endpoint}/v1/invoke``) and OpenAI-compatible providers.

Every call goes through ``aion.netguard.guarded_request`` (SSRF guard, pinned IP, no
redirects) with the router's private-network setting and the policy's timeout, and
carries the task id as ``Idempotency-Key`` so a re-delivered task is not run twice
by a target that honours it. Connections are kept alive per checked destination (``client_for``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings

from aion.netguard import Destination, UnsafeDestination, guarded_request
from aion.secrets import SecretUnavailable, read_kv
from router.choices import Outcome
from router.policy import Target


@dataclass
class CallResult:
    outcome: str  # ok | error | timeout
    latency_ms: float
    output: Any = None
    tokens: int = 0
    cost_usd: float = 0.0
    error_code: str = ""
    error_message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_clients: OrderedDict[tuple[str, str, int, str], httpx.Client] = OrderedDict()
_clients_pid = 0
_clients_lock = threading.Lock()
MAX_POOLED_DESTINATIONS = 64


def client_for(destination: Destination) -> httpx.Client:
    """The process's keep-alive client for exactly DESTINATION (scheme, host name, port, checked address).

    ``guarded_request`` checks (resolves) the URL on every call and hands over the result, so a
    pooled connection is only reused for the address the SSRF guard has just approved, and one host
    name per client keeps a TLS session from serving another name on the same IP. When a host moves
    to a new address its old connections are closed. Building a client costs ~50 ms of TLS set-up and
    a new connection per task was most of a local call, so clients are shared by the worker's threads
    (httpx clients are thread-safe) and rebuilt after a fork.
    """
    global _clients_pid
    key = (destination.scheme, destination.host.lower(), destination.port, destination.address)
    with _clients_lock:
        if _clients_pid != os.getpid():  # a forked worker must not share its parent's sockets
            _clients.clear()
            _clients_pid = os.getpid()
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
        # Dropped clients are not closed here: another thread may be mid-call on one; its sockets
        # close when that call returns and the client is collected.
        for stale in [other for other in _clients if other[:3] == key[:3]]:
            del _clients[stale]
        client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        _clients[key] = client
        while len(_clients) > MAX_POOLED_DESTINATIONS:
            _clients.popitem(last=False)
        return client


def provider_api_key(target: Target) -> str:
    if target.api_key_env:
        value = os.environ.get(target.api_key_env)
        if value:
            return value
    if target.api_key_vault:
        path, key = target.api_key_vault.split("#", 1)
        data = read_kv(path) or {}
        return str(data.get(key) or "")
    return ""


def _chat_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def _messages(intent: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    messages = params.get("messages")
    if isinstance(messages, list) and messages:
        return messages
    prompt = params.get("prompt") or params.get("input") or ""
    return [{"role": "system", "content": f"intent: {intent}"}, {"role": "user", "content": str(prompt)}]


def call_target(target: Target, *, task_id: str, tenant_id: str, intent: str, params: dict[str, Any], timeout_s: float) -> CallResult:
    """One attempt against TARGET; never raises for target failures (they are outcomes)."""
    headers = {"Idempotency-Key": task_id, "x-tenant-id": tenant_id, "x-request-id": task_id}
    if target.kind == "module":
        url = f"{target.endpoint}/v1/invoke"
        body: dict[str, Any] = {"task_id": task_id, "intent": intent, "params": params}
    else:
        url = _chat_url(target.base_url)
        body = {"model": target.model, "messages": _messages(intent, params), "user": tenant_id}
        for key in ("temperature", "max_tokens"):
            if key in params:
                body[key] = params[key]
        try:
            api_key = provider_api_key(target)
        except SecretUnavailable as exc:
            return CallResult(Outcome.ERROR, 0.0, error_code="secret_unavailable", error_message=str(exc))
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
    started = time.perf_counter()
    try:
        response = guarded_request(
            "POST",
            url,
            allow_private=settings.AION_ROUTER_ALLOW_PRIVATE_NETWORKS,
            timeout=timeout_s,
            client_for=client_for,
            json=body,
            headers=headers,
        )
    except UnsafeDestination as exc:
        return CallResult(Outcome.ERROR, _ms(started), error_code="unsafe_destination", error_message=str(exc))
    except httpx.TimeoutException:
        return CallResult(
            Outcome.TIMEOUT, _ms(started), error_code="timeout", error_message=f"{target.name} did not answer within {timeout_s:.3g}s"
        )
    except httpx.HTTPError as exc:
        return CallResult(Outcome.ERROR, _ms(started), error_code="connection_error", error_message=f"{type(exc).__name__}: {exc}"[:500])
    latency = _ms(started)
    if response.status_code >= 400:
        return CallResult(Outcome.ERROR, latency, error_code=f"http_{response.status_code}", error_message=response.text[:500])
    try:
        payload = response.json()
    except ValueError:
        return CallResult(Outcome.ERROR, latency, error_code="bad_response", error_message="the target did not answer JSON")
    if not isinstance(payload, dict):
        return CallResult(Outcome.ERROR, latency, error_code="bad_response", error_message="the target answered a non-object")
    raw_usage = payload.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    if target.kind == "module":
        tokens = _int(usage.get("tokens"))
        cost = _float(usage.get("cost_usd"))
        if cost is None:
            cost = target.price_per_1k_tokens * tokens / 1000.0
        return CallResult(Outcome.OK, latency, output=payload.get("output"), tokens=tokens, cost_usd=cost)
    tokens = _int(usage.get("total_tokens")) or _int(usage.get("prompt_tokens")) + _int(usage.get("completion_tokens"))
    choices = payload.get("choices")
    output: Any = payload
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        output = message.get("content") if isinstance(message, dict) else choices[0]
    return CallResult(Outcome.OK, latency, output=output, tokens=tokens, cost_usd=target.price_per_1k_tokens * tokens / 1000.0)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
