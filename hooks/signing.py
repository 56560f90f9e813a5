"""The one webhook signature scheme, used to sign outbound deliveries and to verify inbound hooks.

``x-omerta-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
Several ``v1=`` entries may be present (one per secret during a rotation); any
one matching a known secret is accepted. Comparisons are constant-time, and
timestamps further than the tolerance from now (either direction) are refused.

docs/webhooks.md carries a copy of ``verify_signature`` for receivers.

Outbound deliveries are also signed the Standard Webhooks way (https://www.standardwebhooks.com/),
so receivers can verify with an off-the-shelf library: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<t>.<raw body>")>`` (one space-separated entry
per secret). The key is the same bytes as above (the secret's UTF-8); receivers get it as
``whsec_<base64 of those bytes>`` (``standard_webhooks_secret``), the form those libraries decode.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "x-omerta-signature"
DELIVERY_HEADER = "x-omerta-delivery"
EVENT_HEADER = "x-omerta-event"
TENANT_HEADER = "x-tenant-id"
DEFAULT_TOLERANCE_SECONDS = 300
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
WHSEC_PREFIX = "whsec_"


class SignatureError(ValueError):
    """Verification failed; ``reason`` is a SignatureFailure value (never shown to the caller)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def compute_signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(_key(secret), str(int(timestamp)).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Iterable[str | bytes], *, timestamp: float | None = None) -> str:
    """The header value signing BODY with every secret given (active first)."""
    t = int(time.time() if timestamp is None else timestamp)
    parts = [f"t={t}"] + [f"v1={compute_signature(secret, t, body)}" for secret in secrets]
    return ",".join(parts)


def standard_webhooks_secret(secret: str | bytes) -> str:
    """SECRET in the Standard Webhooks form: ``whsec_`` + base64 of the exact HMAC key bytes.

    Our raw endpoint secrets also start with ``whsec_`` but are not base64 of their key, so a
    Standard Webhooks library must be given this form, never the raw secret.
    """
    return WHSEC_PREFIX + base64.b64encode(_key(secret)).decode("ascii")


def compute_standard_signature(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The base64 HMAC-SHA256 of ``"<id>.<t>.<body>"`` (no ``v1,`` prefix)."""
    digest = hmac.new(_key(secret), f"{msg_id}.{int(timestamp)}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def standard_headers(msg_id: str, body: bytes, secrets: Iterable[str | bytes], *, timestamp: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers signing BODY with every secret given (active first)."""
    t = int(time.time() if timestamp is None else timestamp)
    return {
        STANDARD_ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: str(t),
        STANDARD_SIGNATURE_HEADER: " ".join(f"v1,{compute_standard_signature(secret, msg_id, t, body)}" for secret in secrets),
    }


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, [v1 signatures]); unknown schemes are ignored so v2 can be added later."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isdigit() or len(value) > 12:
                raise SignatureError("malformed_signature", "t= is not a unix timestamp")
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise SignatureError("malformed_signature", "the header needs t= and at least one v1=")
    return timestamp, signatures


def verify(
    header: str,
    body: bytes,
    secrets: Iterable[str | bytes],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check HEADER over BODY; return the index of the secret that matched or raise SignatureError."""
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("stale_timestamp", "the timestamp is outside the tolerance")
    matched = -1
    for index, secret in enumerate(secrets):
        expected = compute_signature(secret, timestamp, body)
        for candidate in signatures:
            # No early exit: every comparison runs, each in constant time.
            if hmac.compare_digest(expected, candidate) and matched < 0:
                matched = index
    if matched < 0:
        raise SignatureError("bad_signature", "no signature matches a known secret")
    return matched
