"""OPTIONAL ORAS source: pull a module manifest and its Cosign signature from an OCI registry.

Thin on purpose. Enabled only when ``AION_ORAS_REGISTRY`` is set (``host[:port]``,
plain HTTP with ``AION_ORAS_INSECURE=true``). An artifact holds the manifest and its
DSSE envelope, pushed by operators with::

    oras push $AION_ORAS_REGISTRY/modules/<name>:<version> manifest.yaml envelope.json

(``envelope.json`` is ``cosign attest-blob --output-signature``; docs/modules.md). An artifact with the
old ``payload.json``/``signature.sig`` pair is still read, and then refused by verification as a legacy signature.
Only references under the configured registry are pulled, and the registry
host goes through the SSRF guard first (cloud metadata is never reachable).
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings

from aion import netguard

MANIFEST_FILES = ("manifest.yaml", "manifest.yml", "manifest.json")
PAYLOAD_FILE = "payload.json"
SIGNATURE_FILE = "signature.sig"
ENVELOPE_FILE = "envelope.json"


class OrasUnavailable(RuntimeError):
    """ORAS is not configured, the reference is outside the registry, or the pull failed."""


def enabled() -> bool:
    return bool(settings.AION_ORAS_REGISTRY)


def _target(reference: str) -> str:
    registry = settings.AION_ORAS_REGISTRY.rstrip("/")
    if not registry:
        raise OrasUnavailable("AION_ORAS_REGISTRY is not set, so signature references cannot be resolved")
    reference = reference.removeprefix("oci://").removeprefix("oras://")
    if reference.startswith(registry + "/"):
        return reference
    if "/" in reference and ("." in reference.split("/", 1)[0] or ":" in reference.split("/", 1)[0]):
        raise OrasUnavailable(f"{reference!r} is not under the configured registry {registry!r}")
    return f"{registry}/{reference.lstrip('/')}"


def pull_files(reference: str) -> dict[str, bytes]:
    """The files of the artifact at REFERENCE, by name."""
    target = _target(reference)
    try:
        import oras.client
    except ImportError as exc:  # in requirements.txt, imported here only so that Django's start never loads it
        raise OrasUnavailable("the 'oras' package is not installed (pip install oras)") from exc
    scheme = "http" if settings.AION_ORAS_INSECURE else "https"
    try:
        netguard.check_url(f"{scheme}://{settings.AION_ORAS_REGISTRY}/v2/", allow_private=settings.AION_MODULES_ALLOW_PRIVATE_NETWORKS)
    except netguard.UnsafeDestination as exc:
        raise OrasUnavailable(f"registry refused by the SSRF guard: {exc}") from exc
    client = oras.client.OrasClient(hostname=settings.AION_ORAS_REGISTRY, insecure=settings.AION_ORAS_INSECURE)
    with tempfile.TemporaryDirectory(prefix="aion-oras-") as outdir:
        try:
            paths = client.pull(target=target, outdir=outdir)
        except Exception as exc:
            raise OrasUnavailable(f"pull of {target} failed: {type(exc).__name__}: {str(exc)[:200]}") from exc
        return {Path(path).name: Path(path).read_bytes() for path in paths}


def _signature_from(files: dict[str, bytes], target: str) -> dict[str, Any]:
    if ENVELOPE_FILE in files:
        return {"dsse": files[ENVELOPE_FILE].decode(errors="replace").strip()}
    if PAYLOAD_FILE not in files or SIGNATURE_FILE not in files:
        raise OrasUnavailable(f"{target} has no {ENVELOPE_FILE}")
    return {"payload": base64.b64encode(files[PAYLOAD_FILE]).decode(), "signature": files[SIGNATURE_FILE].decode().strip()}


def _has_signature_file(files: dict[str, bytes]) -> bool:
    return ENVELOPE_FILE in files or PAYLOAD_FILE in files


def fetch_signature(reference: str) -> dict[str, Any]:
    """The signature block (``{dsse}``) from the artifact at REFERENCE."""
    return _signature_from(pull_files(reference), reference)


def fetch_manifest(reference: str) -> dict[str, Any]:
    """The manifest at REFERENCE with its signature inlined, ready for ``services.register_module``."""
    from modules import manifest as manifests

    files = pull_files(reference)
    name = next((n for n in MANIFEST_FILES if n in files), None)
    if name is None:
        raise OrasUnavailable(f"{reference} has no {' / '.join(MANIFEST_FILES)}")
    document = manifests.parse_yaml(files[name])
    if not isinstance(document, dict):
        raise OrasUnavailable(f"{reference}: {name} is not a mapping")
    signature = document.get("signature")
    if not (isinstance(signature, dict) and ("dsse" in signature or "payload" in signature)) and _has_signature_file(files):
        document["signature"] = _signature_from(files, reference)
    return document
