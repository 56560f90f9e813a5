"""Module manifest signatures: a DSSE envelope around an in-toto Statement that covers the whole manifest.

What is signed (docs/modules.md, "Signing a manifest"):

* the in-toto Statement (``_type`` ``https://in-toto.io/Statement/v1``; cosign 2.x writes
  ``.../Statement/v0.1``, same shape, also accepted) whose ``subject`` is the image
  (``name`` = the image repository, or its last path segment as ``cosign attest-blob`` writes it;
  ``digest.sha256`` = the image digest) and whose ``predicateType`` is ``PREDICATE_TYPE`` with the
  predicate ``{"manifest_sha256": <hex>, "name": ..., "version": ...}``; ``manifest_sha256`` is the
  sha256 of the canonical JSON of every manifest field except ``signature``
  (``modules.manifest.signed_sha256``: sorted keys, no whitespace, UTF-8);
* wrapped in DSSE: the signature is ECDSA P-256 / SHA-256 (base64 DER) over the PAE
  ``DSSEv1 <len(payloadType)> <payloadType> <len(payload)> <payload>``, exactly what
  ``cosign attest-blob --key cosign.key --type <PREDICATE_TYPE>`` produces.

The manifest carries the envelope in ``signature.dsse`` (the envelope JSON object, or the file
``cosign attest-blob --output-signature`` wrote, as a string: JSON, or base64 of it as cosign 1.x wrote
it; a Sigstore bundle's ``dsseEnvelope`` is taken too), with an optional ``signature.key_id`` hint.
The old image-digest-only simple-signing ``{payload, signature}`` is refused (``legacy_signature``).

``verify_manifest`` is the one check: registration, activation, rollback, ``modules_reverify`` and
the module host's start-up check all call it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from modules import manifest as manifests
from modules.choices import SignatureFailure
from modules.trust import ACTIVE, PENDING, KeyRing, TrustedKey, load_keyring

PAYLOAD_TYPE = "application/vnd.in-toto+json"  # DSSE payloadType of an in-toto statement (cosign's types.IntotoPayloadType)
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = (STATEMENT_V1, "https://in-toto.io/Statement/v0.1")  # cosign 2.x still writes v0.1
PREDICATE_TYPE = "https://aion.omertaos/module-manifest/v1"
MAX_SIGNATURES = 8  # DSSE allows several; more than a handful is not a real envelope
_URLSAFE = str.maketrans("-_", "+/")


class SignatureRejected(Exception):
    def __init__(self, reason: SignatureFailure, detail: str, key_id: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.key_id = key_id


@dataclass(frozen=True)
class VerifiedManifest:
    key_id: str
    fingerprint: str
    docker_reference: str  # the image repository the statement's subject names
    digest: str  # sha256:<hex>, the image digest
    manifest_sha256: str  # what the predicate signs (modules.manifest.signed_sha256)
    statement_type: str


Verified = VerifiedManifest  # the name services and older callers use


# --- Encoding (shared by verification, the sign helpers and the docs) ---------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the bytes that are actually signed (lengths in bytes, ASCII decimal)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def predicate_for(manifest: dict[str, Any]) -> dict[str, Any]:
    """The predicate an operator signs for MANIFEST (``manage.py modules_predicate`` writes it)."""
    return {"manifest_sha256": manifests.signed_sha256(manifest), "name": manifest.get("name"), "version": manifest.get("version")}


def statement_for(manifest: dict[str, Any]) -> dict[str, Any]:
    """The in-toto Statement v1 over MANIFEST: subject = the image, predicate = the manifest's canonical sha256."""
    image = manifests.parse_image(str(manifest.get("image", "")))
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": image.repository, "digest": {"sha256": image.digest.removeprefix("sha256:")}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate_for(manifest),
    }


def envelope_for(statement: dict[str, Any], private_key: ec.EllipticCurvePrivateKey, *, keyid: str = "") -> dict[str, Any]:
    """A DSSE envelope over STATEMENT signed as cosign signs it (ECDSA P-256 SHA-256 over the PAE, base64 DER)."""
    body = json.dumps(statement, separators=(",", ":")).encode()
    signature = private_key.sign(pae(PAYLOAD_TYPE, body), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode(),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}],
    }


def sign_manifest(manifest: dict[str, Any], private_key: ec.EllipticCurvePrivateKey, *, key_id: str = "") -> dict[str, Any]:
    """A copy of MANIFEST signed with PRIVATE_KEY (the format ``cosign attest-blob`` gives; for tests and sample manifests)."""
    signed = manifests.signed_content(manifest)
    signed["signature"] = {"dsse": envelope_for(statement_for(signed), private_key)}
    if key_id:
        signed["signature"]["key_id"] = key_id
    return signed


def attach_envelope(manifest: dict[str, Any], envelope: Any, *, key_id: str = "") -> dict[str, Any]:
    """A copy of MANIFEST carrying ENVELOPE (what cosign wrote: parsed JSON, JSON text or base64 of it) in ``signature.dsse``."""
    signed = manifests.signed_content(manifest)
    signed["signature"] = {"dsse": _envelope_document(envelope)}
    if key_id:
        signed["signature"]["key_id"] = key_id
    return signed


# --- Verification -------------------------------------------------------------------------------


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise SignatureRejected(SignatureFailure.MISSING, f"the signature has no {what}")
    text = "".join(value.split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:  # DSSE allows URL-safe base64 too
        return base64.b64decode(text.translate(_URLSAFE) + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureRejected(SignatureFailure.MALFORMED, f"the {what} is not valid base64") from exc


def _verifies(key: TrustedKey, message: bytes, signature: bytes) -> bool:
    try:
        key.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def resolve_signature(signature: Any) -> dict[str, Any]:
    """The inline signature block; a ``{ref}`` is pulled through the optional ORAS source."""
    if not isinstance(signature, dict) or not signature:
        raise SignatureRejected(SignatureFailure.MISSING, "the manifest has no signature (missing signatures are a hard failure)")
    if "ref" in signature and "dsse" not in signature and "payload" not in signature:
        from modules import oras_source

        try:
            return oras_source.fetch_signature(str(signature["ref"]))
        except oras_source.OrasUnavailable as exc:
            raise SignatureRejected(SignatureFailure.UNRESOLVED, str(exc)) from exc
    return signature


def _envelope_document(value: Any) -> dict[str, Any]:
    """The DSSE envelope as a mapping, from any of the shapes cosign writes."""
    document = value
    if isinstance(document, (bytes, str)):
        text = document.decode() if isinstance(document, bytes) else document
        text = text.strip()
        if not text:
            raise SignatureRejected(SignatureFailure.MISSING, "signature.dsse is empty")
        if not text.startswith("{"):  # cosign 1.x wrote the envelope base64-encoded
            text = _b64(text, "DSSE envelope").decode(errors="replace")
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise SignatureRejected(SignatureFailure.MALFORMED, "signature.dsse is not a DSSE envelope (JSON)") from exc
    if isinstance(document, dict) and isinstance(document.get("dsseEnvelope"), dict):
        document = document["dsseEnvelope"]  # a Sigstore bundle (cosign --bundle --new-bundle-format)
    if not isinstance(document, dict):
        raise SignatureRejected(SignatureFailure.MALFORMED, "signature.dsse is not a DSSE envelope")
    return document


def _envelope(signature: dict[str, Any]) -> tuple[str, bytes, list[bytes]]:
    """(payloadType, payload bytes, signatures) of the manifest's DSSE envelope."""
    if "dsse" not in signature:
        if "payload" in signature or "signature" in signature:
            raise SignatureRejected(
                SignatureFailure.LEGACY_FORMAT,
                "image-digest-only Cosign simple-signing signatures (signature.payload / signature.signature) are no longer "
                f"accepted: sign the whole manifest as a DSSE envelope with an in-toto statement of predicateType {PREDICATE_TYPE} "
                "(cosign attest-blob) and put it in signature.dsse; see docs/modules.md",
            )
        raise SignatureRejected(SignatureFailure.MISSING, "the signature has no dsse envelope")
    document = _envelope_document(signature["dsse"])
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise SignatureRejected(SignatureFailure.MALFORMED, "the DSSE envelope has no payloadType")
    body = _b64(document.get("payload"), "DSSE payload")
    entries = document.get("signatures")
    if not isinstance(entries, list) or not entries:
        raise SignatureRejected(SignatureFailure.MISSING, "the DSSE envelope has no signatures")
    if len(entries) > MAX_SIGNATURES:
        raise SignatureRejected(SignatureFailure.MALFORMED, f"the DSSE envelope has more than {MAX_SIGNATURES} signatures")
    sigs = [_b64(entry.get("sig") if isinstance(entry, dict) else None, "DSSE signature") for entry in entries]
    return payload_type, body, sigs


def _as_keyring(keys: KeyRing | Iterable[TrustedKey] | None) -> KeyRing:
    if keys is None:
        return load_keyring()
    if isinstance(keys, KeyRing):
        return keys
    return KeyRing(keys=list(keys))


def _subject_matches(subject: Any, repository: str, digest_hex: str) -> bool:
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
        return False
    # ``cosign attest`` names the repository; ``cosign attest-blob`` names path.Base of its argument.
    names = {repository, repository.rsplit("/", 1)[-1]}
    return subject["digest"].get("sha256") == digest_hex and subject.get("name") in names


def verify_manifest(
    manifest: dict[str, Any],
    keyring: KeyRing | Iterable[TrustedKey] | None = None,
    *,
    now: datetime | None = None,
) -> VerifiedManifest:
    """The key whose DSSE signature covers exactly this MANIFEST (every field but ``signature``); SignatureRejected otherwise.

    KEYRING: a ``KeyRing``, any iterable of ``TrustedKey`` or None (the configured keys, ``trust.load_keyring``).
    """
    now = now or datetime.now(UTC)  # not django.utils.timezone: the module host verifies without Django settings
    if not isinstance(manifest, dict):
        raise SignatureRejected(SignatureFailure.MALFORMED, "the manifest is not a mapping")
    signature = resolve_signature(manifest.get("signature"))
    payload_type, body, sigs = _envelope(signature)
    ring = _as_keyring(keyring)
    hint = str(signature.get("key_id") or "")
    if hint and ring.get(hint) is None:
        raise SignatureRejected(SignatureFailure.UNTRUSTED_KEY, f"key {hint!r} is not a trusted key", key_id=hint)
    if not ring.keys:
        raise SignatureRejected(SignatureFailure.UNTRUSTED_KEY, "no trusted Cosign keys are configured")
    message = pae(payload_type, body)
    candidates = sorted(ring.keys, key=lambda k: (k.key_id != hint, k.key_id))
    signer = next((key for key in candidates if any(_verifies(key, message, sig) for sig in sigs)), None)
    if signer is None:
        raise SignatureRejected(SignatureFailure.BAD, "no trusted key verifies this DSSE signature over this payload")
    # What was signed is checked before the key's window: tampering is reported as such even under a retired key.
    key_id = signer.key_id
    if payload_type != PAYLOAD_TYPE:
        raise SignatureRejected(SignatureFailure.WRONG_TYPE, f"DSSE payloadType is {payload_type!r}, not {PAYLOAD_TYPE!r}", key_id)
    try:
        statement = json.loads(body)
        statement_type, predicate_type = statement["_type"], statement["predicateType"]
        subjects, predicate = statement["subject"], statement["predicate"]
        signed_sha = predicate["manifest_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureRejected(
            SignatureFailure.MALFORMED, "the DSSE payload is not an in-toto statement with a manifest predicate", key_id
        ) from exc
    if statement_type not in STATEMENT_TYPES:
        raise SignatureRejected(SignatureFailure.WRONG_TYPE, f"statement _type is {statement_type!r}, not {STATEMENT_V1!r}", key_id)
    if predicate_type != PREDICATE_TYPE:
        raise SignatureRejected(SignatureFailure.WRONG_TYPE, f"predicateType is {predicate_type!r}, not {PREDICATE_TYPE!r}", key_id)
    try:
        actual_sha = manifests.signed_sha256(manifest)
    except (TypeError, ValueError) as exc:
        raise SignatureRejected(SignatureFailure.MALFORMED, "the manifest cannot be encoded as canonical JSON", key_id) from exc
    if signed_sha != actual_sha:
        raise SignatureRejected(
            SignatureFailure.MANIFEST_MISMATCH,
            f"the signature covers manifest sha256 {str(signed_sha)[:64]}, this manifest is {actual_sha}: "
            "a signed field (image, endpoint, intents, permissions, resources, pool, ...) changed after signing",
            key_id,
        )
    for field in ("name", "version"):
        if field in predicate and predicate[field] != manifest.get(field):
            raise SignatureRejected(
                SignatureFailure.MANIFEST_MISMATCH,
                f"the predicate names {field} {predicate[field]!r}, the manifest {manifest.get(field)!r}",
                key_id,
            )
    image = manifests.parse_image(str(manifest.get("image", "")))
    digest_hex = image.digest.removeprefix("sha256:")
    if not isinstance(subjects, list) or not any(isinstance(s, dict) and isinstance(s.get("digest"), dict) for s in subjects):
        raise SignatureRejected(SignatureFailure.MALFORMED, "the statement has no subject", key_id)
    if not any(isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get("sha256") == digest_hex for s in subjects):
        raise SignatureRejected(
            SignatureFailure.DIGEST_MISMATCH, f"no statement subject has the manifest's image digest {image.digest}", key_id
        )
    if not any(_subject_matches(s, image.repository, digest_hex) for s in subjects):
        raise SignatureRejected(
            SignatureFailure.IDENTITY_MISMATCH, f"no statement subject with that digest names the image {image.repository!r}", key_id
        )
    state = signer.state(now)
    if state != ACTIVE:
        reason = SignatureFailure.UNTRUSTED_KEY if state == PENDING else SignatureFailure.RETIRED_KEY
        window = f"valid {signer.not_before or '-'} .. {signer.not_after or '-'}{', retired' if signer.retired else ''}"
        raise SignatureRejected(reason, f"signed by key {signer.key_id!r}, which is {state} ({window})", key_id=signer.key_id)
    return VerifiedManifest(
        key_id=key_id,
        fingerprint=signer.fingerprint,
        docker_reference=image.repository,
        digest=image.digest,
        manifest_sha256=actual_sha,
        statement_type=statement_type,
    )
