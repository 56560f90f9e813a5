"""What an invocation does: ``embed.*`` computes embeddings here, ``chat.*`` is forwarded upstream.

Refusals are the platform's domain errors (``aion.errors``); the server maps them to problem JSON with
``aion.problems`` as the control plane does.

- Embeddings: ``all-MiniLM-L6-v2`` when its packages are installed (``aion.embedders.minilm_installed``),
  else the feature-hash embedder ``hash-384``; ``--embedder`` forces one. The answer's ``model`` names the
  one that ran and ``fallback`` is true for the feature-hash embedder.
- Chat: ``POST <AION_MODULE_CHAT_URL>/v1/chat/completions`` (OpenAI-compatible) through
  ``aion.netguard.guarded_request`` (SSRF guard, pinned address, no redirects); private and loopback
  upstreams only with ``AION_MODULE_CHAT_ALLOW_PRIVATE_NETWORKS``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from aion import errors
from aion.embedders import HASH_MODEL, EmbeddingError, HashEmbedding, MiniLMEmbedding, minilm_installed
from aion.netguard import UnsafeDestination, guarded_request

MAX_TEXTS = 256
MAX_TEXT_CHARS = 20_000


class UpstreamFailed(errors.Unavailable):
    code = "upstream-unavailable"


@dataclass
class WorkResult:
    output: Any
    tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatUpstream:
    url: str = ""
    model: str = ""
    api_key: str = ""
    allow_private: bool = False
    timeout_s: float = 30.0


class Embedder:
    """The embedding model this host runs, chosen once (``auto``: MiniLM where installed, else feature hashing)."""

    def __init__(self, choice: str = "auto") -> None:
        if choice not in ("auto", "minilm", "hash"):
            raise ValueError(f"unknown embedder {choice!r} (auto, minilm or hash)")
        use_minilm = choice == "minilm" or (choice == "auto" and minilm_installed())
        self.model: HashEmbedding | MiniLMEmbedding = MiniLMEmbedding() if use_minilm else HashEmbedding()
        self._lock = threading.Lock()  # one encode at a time: torch already uses every core

    @property
    def key(self) -> str:
        return self.model.key

    def warm_up(self) -> None:
        """Loads the model before the host reports ready (MiniLM takes seconds the first time)."""
        self.embed(["warm up"])

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            try:
                return self.model.embed(texts)
            except EmbeddingError as exc:
                raise errors.Unavailable(str(exc), code="embedder-unavailable") from exc


def _texts(params: dict[str, Any]) -> tuple[list[str], bool]:
    """The texts to embed (``input``/``texts``/``text``/``prompt``) and whether one string was given."""
    for name in ("input", "texts", "text", "prompt"):
        if name in params:
            value = params[name]
            break
    else:
        raise errors.InvalidInput("give the text to embed in params.input", errors={"params.input": ["This field is required."]})
    single = isinstance(value, str)
    texts = [value] if single else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise errors.InvalidInput("params.input must be a string or a non-empty list of strings", errors={"params.input": ["Not text."]})
    if len(texts) > MAX_TEXTS or any(len(t) > MAX_TEXT_CHARS for t in texts):
        raise errors.TooLarge(f"at most {MAX_TEXTS} texts of at most {MAX_TEXT_CHARS} characters each")
    return texts, single


def embed(embedder: Embedder, params: dict[str, Any]) -> WorkResult:
    texts, single = _texts(params)
    vectors = embedder.embed(texts)
    output: dict[str, Any] = {
        "model": embedder.key,
        "fallback": embedder.key == HASH_MODEL,  # the feature-hash embedder: no model installed here
        "dimension": len(vectors[0]) if vectors else 0,
        "embeddings": vectors,
    }
    if single:
        output["embedding"] = vectors[0]
    tokens = sum(len(t.split()) for t in texts)  # words: what the feature-hash embedder counts; close enough for MiniLM
    return WorkResult(output=output, tokens=tokens, extra={"model": embedder.key})


def chat_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def chat(upstream: ChatUpstream, intent: str, params: dict[str, Any], *, request_id: str) -> WorkResult:
    if not upstream.url:
        raise errors.Unavailable("this host has no chat upstream (AION_MODULE_CHAT_URL is not set)", code="upstream-not-configured")
    messages = params.get("messages")
    if not (isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages)):
        prompt = params.get("prompt") or params.get("input")
        if not isinstance(prompt, str) or not prompt:
            raise errors.InvalidInput("give params.messages or params.prompt", errors={"params.prompt": ["This field is required."]})
        messages = [{"role": "system", "content": f"intent: {intent}"}, {"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": str(params.get("model") or upstream.model), "messages": messages}
    for name in ("temperature", "max_tokens", "top_p", "stop"):
        if name in params:
            body[name] = params[name]
    headers = {"x-request-id": request_id}
    if upstream.api_key:
        headers["Authorization"] = f"Bearer {upstream.api_key}"
    try:
        response = guarded_request(
            "POST", chat_url(upstream.url), allow_private=upstream.allow_private, timeout=upstream.timeout_s, json=body, headers=headers
        )
    except UnsafeDestination as exc:
        raise UpstreamFailed(f"the chat upstream is not an allowed destination: {exc}", code="unsafe-destination") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamFailed(f"the chat upstream did not answer within {upstream.timeout_s:g}s", code="upstream-timeout") from exc
    except httpx.HTTPError as exc:
        raise UpstreamFailed(f"the chat upstream is unreachable: {type(exc).__name__}", retry_after=5) from exc
    if response.status_code >= 400:
        raise UpstreamFailed(f"the chat upstream answered {response.status_code}: {response.text[:300]}", retry_after=5)
    try:
        payload = response.json()
        message = payload["choices"][0]["message"]
        content = message["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamFailed("the chat upstream's answer is not an OpenAI chat completion", code="upstream-bad-answer") from exc
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
    tokens = _count(usage.get("total_tokens")) or _count(usage.get("prompt_tokens")) + _count(usage.get("completion_tokens"))
    return WorkResult(
        output={
            "content": content,
            "model": payload.get("model") or body["model"],
            "finish_reason": payload["choices"][0].get("finish_reason"),
        },
        tokens=tokens,
        extra={"model": payload.get("model") or body["model"]},
    )


def _count(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
