"""Modules test helpers: Cosign key pairs generated in the test, and correctly signed manifests (imported by any app's tests).

Signatures are made as ``cosign attest-blob --key`` makes them, written out here rather than taken
from ``modules.signing``: a DSSE envelope whose signature is ECDSA P-256 SHA-256 (base64 DER) over
the PAE ``DSSEv1 <len(type)> <type> <len(body)> <body>`` of an in-toto statement.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aion.testing.factories import TENANT
from modules import manifest as manifests
from modules.signing import PREDICATE_TYPE

REGISTRY = "registry.example.com/aion"


IN_TOTO = "application/vnd.in-toto+json"


@dataclass
class CosignKey:
    key_id: str
    private: ec.EllipticCurvePrivateKey
    pem_path: Path
    options: dict[str, str] = field(default_factory=dict)

    def sign(self, payload: bytes) -> str:
        """base64 DER ECDSA P-256 SHA-256 over PAYLOAD (what ``cosign sign-blob --key`` outputs)."""
        return base64.b64encode(self.private.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()

    def envelope(self, statement: dict[str, Any] | bytes, payload_type: str = IN_TOTO) -> dict[str, Any]:
        """The DSSE envelope cosign writes (``--output-signature``) for STATEMENT."""
        body = statement if isinstance(statement, bytes) else json.dumps(statement, separators=(",", ":")).encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(payload_type.encode()), payload_type.encode(), len(body), body)
        return {
            "payloadType": payload_type,
            "payload": base64.b64encode(body).decode(),
            "signatures": [{"keyid": "", "sig": self.sign(pae)}],
        }

    def entry(self) -> str:
        return ";".join([f"{self.key_id}={self.pem_path}", *(f"{k}={v}" if v else k for k, v in self.options.items())])


class KeyRingFixture:
    """Generates key pairs and keeps AION_COSIGN_PUBLIC_KEYS in step with the trusted ones."""

    def __init__(self, tmp_path: Path, settings: Any) -> None:
        self.tmp_path = tmp_path
        self.settings = settings
        self.trusted: dict[str, CosignKey] = {}
        self.settings.AION_COSIGN_PUBLIC_KEYS = ""

    def new(self, key_id: str, *, trusted: bool = True, **options: str) -> CosignKey:
        private = ec.generate_private_key(ec.SECP256R1())
        path = self.tmp_path / f"{key_id}.pub"
        path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        key = CosignKey(key_id, private, path, dict(options))
        if trusted:
            self.trusted[key_id] = key
            self._sync()
        return key

    def set_options(self, key_id: str, **options: str) -> None:
        self.trusted[key_id].options = dict(options)
        self._sync()

    def retire(self, key_id: str) -> None:
        self.set_options(key_id, retired="")

    def remove(self, key_id: str) -> None:
        self.trusted.pop(key_id)
        self._sync()

    def _sync(self) -> None:
        self.settings.AION_COSIGN_PUBLIC_KEYS = ",".join(key.entry() for key in self.trusted.values())


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def statement_for(manifest: dict[str, Any], *, subject_name: str | None = None, subject_digest: str | None = None) -> dict[str, Any]:
    """The in-toto statement over MANIFEST: subject = its image, predicate = sha256 of its canonical JSON without ``signature``."""
    repository, _, digest = manifest["image"].partition("@")
    repository = repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject_name or repository, "digest": {"sha256": (subject_digest or digest).removeprefix("sha256:")}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"manifest_sha256": hashlib.sha256(canonical).hexdigest(), "name": manifest["name"], "version": manifest["version"]},
    }


def build_manifest(
    signer: CosignKey | None,
    name: str = "summarizer",
    version: str = "1.0.0",
    *,
    endpoint: str = "http://127.0.0.1:9",
    intents: tuple[str, ...] = ("summarize.*",),
    pool: str = "cpu",
    signed_digest: str | None = None,
    signed_reference: str | None = None,
    payload: bytes | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid manifest for NAME VERSION signed by SIGNER (None: unsigned); overrides tamper with the statement.

    SIGNED_DIGEST / SIGNED_REFERENCE: the statement's subject digest / name; PAYLOAD: the DSSE payload bytes as is.
    """
    digest = digest_of(f"{name}:{version}:{extra.get('runtime', '')}")
    repository = f"{REGISTRY}/{name}"
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "image": f"{repository}:{version}@{digest}",
        "runtime": "python3.11",
        "resources": {"cpu": "500m", "memory": "512Mi", "gpu": 1 if pool == "gpu" else 0},
        "pool": pool,
        "node_selector": {"aion.io/pool": pool},
        "intents": list(intents),
        "endpoint": endpoint,
        "health_path": "/healthz",
        "permissions": {"network": "cluster", "filesystem": "read-only", "secrets": []},
    }
    manifest.update(extra)
    if signer is not None:
        statement = statement_for(manifest, subject_name=signed_reference, subject_digest=signed_digest)
        manifest["signature"] = {"dsse": signer.envelope(payload if payload is not None else statement)}
    return manifest


def resign(manifest: dict[str, Any], signer: CosignKey) -> dict[str, Any]:
    """MANIFEST (changed or not) with a fresh signature over its current content."""
    unsigned = manifests.signed_content(manifest)
    return {**unsigned, "signature": {"dsse": signer.envelope(statement_for(unsigned))}}


def register(signer: CosignKey, version: str = "1.0.0", *, tenant: str = TENANT, activate: bool = True, **kwargs: Any) -> Any:
    """Register (and activate) NAME VERSION through the service, as a system actor."""
    from aion.auth.principal import system_principal
    from modules import services

    manifest = build_manifest(signer, version=version, **kwargs)
    return services.register_module(tenant, manifest, actor=system_principal(tenant, "tests"), activate=activate)
