"""Cosign simple-signing verification (key-pair mode), with ``cryptography``.

What ``cosign sign --key cosign.key --output-payload p --output-signature s``
produces: ``p`` is the simple-signing JSON

    {"critical": {"identity": {"docker-reference": "<repo>"},
                  "image": {"docker-manifest-digest": "sha256:<hex>"},
                  "type": "cosign container image signature"},
     "optional": {...}}

and ``s`` is the base64 DER ECDSA P-256 signature over the exact bytes of
``p`` (SHA-256). The manifest's ``signature`` carries ``payload`` (base64 of
``p``) and ``signature`` (the content of ``s``). The signature covers bytes,
not JSON meaning, so a re-encoded payload does not verify.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from modules import manifest as manifests
from modules.choices import SignatureFailure
from modules.trust import ACTIVE, PENDING, KeyRing, TrustedKey, load_keyring

COSIGN_TYPE = "cosign container image signature"


class SignatureRejected(Exception):
    def __init__(self, reason: SignatureFailure, detail: str, key_id: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.key_id = key_id


@dataclass(frozen=True)
class Verified:
    key_id: str
    fingerprint: str
    docker_reference: str
    digest: str


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise SignatureRejected(SignatureFailure.MISSING, f"the signature has no {what}")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureRejected(SignatureFailure.MALFORMED, f"the {what} is not valid base64") from exc


def _verifies(key: TrustedKey, payload: bytes, signature: bytes) -> bool:
    try:
        key.public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def resolve_signature(signature: Any) -> dict[str, Any]:
    """The inline ``{payload, signature}``; a ``{ref}`` is pulled through the optional ORAS source."""
    if not isinstance(signature, dict) or not signature:
        raise SignatureRejected(SignatureFailure.MISSING, "the manifest has no signature (missing signatures are a hard failure)")
    if "ref" in signature and "payload" not in signature:
        from modules import oras_source

        try:
            return oras_source.fetch_signature(str(signature["ref"]))
        except oras_source.OrasUnavailable as exc:
            raise SignatureRejected(SignatureFailure.UNRESOLVED, str(exc)) from exc
    return signature


def verify_manifest(manifest: dict[str, Any], *, now: datetime | None = None, keyring: KeyRing | None = None) -> Verified:
    """The key that verifies MANIFEST's signature over its own image digest; SignatureRejected otherwise."""
    now = now or timezone.now()
    signature = resolve_signature(manifest.get("signature"))
    payload = _b64(signature.get("payload"), "payload")
    raw_signature = _b64(signature.get("signature"), "signature")
    ring = keyring if keyring is not None else load_keyring()
    hint = str(signature.get("key_id") or "")
    if hint and ring.get(hint) is None:
        raise SignatureRejected(SignatureFailure.UNTRUSTED_KEY, f"key {hint!r} is not a trusted key", key_id=hint)
    if not ring.keys:
        raise SignatureRejected(SignatureFailure.UNTRUSTED_KEY, "no trusted Cosign keys are configured")
    candidates = sorted(ring.keys, key=lambda k: (k.key_id != hint, k.key_id))
    signer = next((key for key in candidates if _verifies(key, payload, raw_signature)), None)
    if signer is None:
        raise SignatureRejected(SignatureFailure.BAD, "no trusted key verifies this signature over this payload")
    state = signer.state(now)
    if state != ACTIVE:
        reason = SignatureFailure.UNTRUSTED_KEY if state == PENDING else SignatureFailure.RETIRED_KEY
        window = f"valid {signer.not_before or '-'} .. {signer.not_after or '-'}{', retired' if signer.retired else ''}"
        raise SignatureRejected(reason, f"signed by key {signer.key_id!r}, which is {state} ({window})", key_id=signer.key_id)
    try:
        document = json.loads(payload)
        critical = document["critical"]
        payload_type = critical["type"]
        digest = critical["image"]["docker-manifest-digest"]
        reference = critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureRejected(SignatureFailure.MALFORMED, "the payload is not Cosign simple-signing JSON", signer.key_id) from exc
    if payload_type != COSIGN_TYPE:
        raise SignatureRejected(SignatureFailure.WRONG_TYPE, f"payload type is {payload_type!r}, not {COSIGN_TYPE!r}", signer.key_id)
    image = manifests.parse_image(str(manifest.get("image", "")))
    if digest != image.digest:
        raise SignatureRejected(
            SignatureFailure.DIGEST_MISMATCH, f"the payload signs {digest}, the manifest pins {image.digest}", signer.key_id
        )
    if reference != image.repository:
        raise SignatureRejected(
            SignatureFailure.IDENTITY_MISMATCH, f"the payload names {reference!r}, the image is {image.repository!r}", signer.key_id
        )
    return Verified(key_id=signer.key_id, fingerprint=signer.fingerprint, docker_reference=reference, digest=digest)


def simple_signing_payload(repository: str, digest: str, optional: dict[str, Any] | None = None) -> bytes:
    """The payload cosign signs (compact JSON, as cosign writes it); used by tests and the signing docs."""
    document = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_TYPE,
        },
        "optional": optional,
    }
    return json.dumps(document, separators=(",", ":")).encode()
