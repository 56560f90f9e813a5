"""Encryption at rest for hook and endpoint secrets (Fernet).

The key is ``AION_ENCRYPTION_KEY`` (a Fernet key, or any string, which is then
hashed into one); without it, a key is derived from SECRET_KEY. Rotating
``AION_ENCRYPTION_KEY``: put the old value in ``AION_ENCRYPTION_KEY_PREVIOUS``
so existing rows still decrypt, then rotate the secrets (they are re-encrypted).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets as pysecrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet_for(material: str, *, derived_label: str = "aion-hooks-secrets") -> Fernet:
    try:
        return Fernet(material.encode())
    except ValueError:
        # Not a Fernet key: derive one (domain-separated, so SECRET_KEY is never used raw).
        digest = hashlib.sha256(f"{derived_label}:{material}".encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


def _cipher() -> MultiFernet:
    primary = settings.AION_ENCRYPTION_KEY or settings.SECRET_KEY
    keys = [_fernet_for(primary)]
    previous = settings.AION_ENCRYPTION_KEY_PREVIOUS
    if previous:
        keys.append(_fernet_for(previous))
    return MultiFernet(keys)


class SecretDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with the configured key(s)."""


def encrypt(plaintext: str) -> str:
    return _cipher().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("stored secret does not decrypt with AION_ENCRYPTION_KEY") from exc


@functools.lru_cache(maxsize=2048)
def _decrypt_with(token: str, keys: tuple[str, str]) -> str:
    return decrypt(token)


def decrypt_cached(token: str) -> str:
    """``decrypt`` memoised per process, for the delivery hot path (a Fernet decrypt per send adds up).

    Keyed by the ciphertext and the configured keys: a rotated secret is a new ciphertext, so it can
    never be answered from an old entry; failures are never cached.
    """
    keys = (settings.AION_ENCRYPTION_KEY or settings.SECRET_KEY, settings.AION_ENCRYPTION_KEY_PREVIOUS)
    return _decrypt_with(token, keys)


def fingerprint(secret: str) -> str:
    """A short, non-reversible id of a secret for listings and audit."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def new_endpoint_secret() -> str:
    return "whsec_" + pysecrets.token_urlsafe(32)


def new_hook_secret() -> str:
    return "hksec_" + pysecrets.token_urlsafe(32)
