"""Router test helpers: the policy file, scripted module/provider hosts, a basic policy, the published events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aion.testing.http import LocalHTTPServer, RecordedRequest


class PolicyFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, text: str) -> None:
        self.path.write_text(text)


class ScriptedTarget:
    """A real LocalHTTPServer on 127.0.0.1 playing an external module host or OpenAI-compatible provider.

    The hosts are external engines (model servers) that cannot run here; this one answers their wire
    contract. ``mode`` is good, slow, fail or garbage (set per test).
    """

    def __init__(self, server: LocalHTTPServer, kind: str) -> None:
        self.server = server
        self.kind = kind
        self.mode = "good"
        self.slow_seconds = 2.0
        self.tokens = 100
        self.cost_usd = 0.0
        server.handler = self._reply

    @property
    def url(self) -> str:
        return self.server.url("").rstrip("/")

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    def _reply(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if self.mode == "fail":
            return 503, {"error": "overloaded"}, {}
        if self.mode == "garbage":
            return 200, b"not json", {"Content-Type": "text/plain"}
        if self.mode == "slow":
            import time

            time.sleep(self.slow_seconds)
        body = request.json() or {}
        if self.kind == "module":
            return (
                200,
                {
                    "output": {"echo": body.get("params"), "task_id": body.get("task_id")},
                    "usage": {"tokens": self.tokens, "cost_usd": self.cost_usd},
                },
                {},
            )
        return (
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from provider"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 40, "completion_tokens": 60, "total_tokens": self.tokens},
            },
            {},
        )


def basic_policy(
    module_url: str,
    provider_url: str,
    *,
    strategy: str = "priority",
    route: str = "hybrid",
    extra: str = "",
    budget: str = "",
    fallbacks: str = "[]",
    timeout_ms: int = 1500,
) -> str:
    return f"""
version: 1
settings:
  seed: 7
  timeout_ms: {timeout_ms}
{budget}
targets:
  - name: local-a
    kind: module
    endpoint: {module_url}
  - name: cloud
    kind: provider
    base_url: {provider_url}
    model: gpt-test
    price_per_1k_tokens: 0.5
    api_key_env: ROUTER_TEST_PROVIDER_KEY
{extra}
rules: []
default:
  route: {route}
  strategy: {strategy}
  candidates: [local-a, cloud]
  fallbacks: {fallbacks}
"""


def events(topic: str) -> list[dict[str, Any]]:
    """The envelopes published on TOPIC, each checked against its docs/events/<topic>.json schema."""
    from aion.models import OutboxEvent
    from aion.topics import validate_event

    envelopes = [json.loads(json.dumps(e.envelope)) for e in OutboxEvent.objects.filter(topic=topic).order_by("id")]
    for envelope in envelopes:
        validate_event(topic, envelope)
    return envelopes
