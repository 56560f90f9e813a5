"""Who this host is: its module manifest, verified at start-up exactly as registration verifies it.

The manifest (YAML or JSON) is read from ``--manifest`` / ``AION_MODULE_MANIFEST``; the trusted keys are
``AION_COSIGN_PUBLIC_KEYS`` (the control plane's format, parsed by ``modules.trust.keyring_from_entries``);
the check is ``modules.signing.verify_manifest`` over the whole manifest. Any failure is ``HostRefused``.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modules.signing import SignatureRejected, verify_manifest
from modules.trust import keyring_from_entries


class HostRefused(Exception):
    """The host must not start: its manifest is missing, unreadable or does not verify against a trusted key."""


@dataclass(frozen=True)
class ModuleIdentity:
    name: str
    version: str
    pool: str
    intents: tuple[str, ...]
    key_id: str
    manifest_sha256: str

    def serves(self, intent: str) -> bool:
        return any(fnmatch.fnmatchcase(intent, pattern) for pattern in self.intents)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise HostRefused(f"cannot read the module manifest {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise HostRefused(f"the module manifest {path} is neither JSON nor YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise HostRefused(f"the module manifest {path} is not a mapping")
    return document


def verified_identity(manifest_path: str, trusted_keys: str) -> ModuleIdentity:
    """The identity MANIFEST_PATH declares, once its signature verifies against TRUSTED_KEYS; HostRefused otherwise."""
    if not manifest_path:
        raise HostRefused("no module manifest: set AION_MODULE_MANIFEST (or --manifest) to the signed manifest this host serves")
    manifest = read_manifest(Path(manifest_path))
    ring = keyring_from_entries(trusted_keys)
    if ring.errors:
        raise HostRefused("; ".join(ring.errors))
    try:
        verified = verify_manifest(manifest, ring)
    except SignatureRejected as exc:
        raise HostRefused(f"the module manifest does not verify ({exc.reason}): {exc.detail}") from exc
    intents = manifest.get("intents")
    return ModuleIdentity(
        name=str(manifest.get("name") or ""),
        version=str(manifest.get("version") or ""),
        pool=str(manifest.get("pool") or "cpu"),
        intents=tuple(str(i) for i in intents) if isinstance(intents, list) else (),
        key_id=verified.key_id,
        manifest_sha256=verified.manifest_sha256,
    )
