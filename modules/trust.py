"""Trusted Cosign public keys: from AION_COSIGN_PUBLIC_KEYS and/or Vault, each with an id and a validity window.

``AION_COSIGN_PUBLIC_KEYS`` is a comma-separated list of
``id=/path/to/cosign.pub`` entries, each optionally followed by
``;not_before=<ISO-8601>``, ``;not_after=<ISO-8601>`` and ``;retired``.
Vault (KV v2 at ``AION_COSIGN_VAULT_PATH``, read through ``aion.secrets``)
maps each key id to a PEM string or to ``{pem, not_before, not_after, retired}``.
Several keys may be active at once, which is how a rotation overlaps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from aion import secrets

ACTIVE, PENDING, RETIRED = "active", "pending", "retired"


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    public_key: ec.EllipticCurvePublicKey
    source: str  # "env:<path>" or "vault:<path>"
    not_before: datetime | None = None
    not_after: datetime | None = None
    retired: bool = False

    @property
    def fingerprint(self) -> str:
        der = self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256:" + hashlib.sha256(der).hexdigest()

    def state(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.retired or (self.not_after is not None and now >= self.not_after):
            return RETIRED
        if self.not_before is not None and now < self.not_before:
            return PENDING
        return ACTIVE


@dataclass
class KeyRing:
    keys: list[TrustedKey] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # keys that could not be loaded, with why

    def get(self, key_id: str) -> TrustedKey | None:
        return next((key for key in self.keys if key.key_id == key_id), None)


class KeyConfigError(ValueError):
    pass


def _when(value: Any, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        moment_or_none = parse_datetime(text)
        if moment_or_none is None:
            day = parse_date(text)
            if day is None:
                raise KeyConfigError(f"{what} {text!r} is not an ISO-8601 date or datetime")
            moment_or_none = datetime(day.year, day.month, day.day)
        moment = moment_or_none
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise KeyConfigError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyConfigError("only ECDSA P-256 keys (cosign generate-key-pair) are supported")
    return key


def parse_env_entry(entry: str) -> TrustedKey:
    head, *options = [part.strip() for part in entry.split(";")]
    key_id, sep, path = head.partition("=")
    if not sep or not key_id.strip() or not path.strip():
        raise KeyConfigError(f"{entry!r} is not id=path-to-PEM")
    key_id, path = key_id.strip(), path.strip()
    fields: dict[str, Any] = {}
    for option in options:
        name, _, value = option.partition("=")
        name = name.strip()
        if name in ("not_before", "not_after"):
            fields[name] = _when(value, f"{key_id} {name}")
        elif name == "retired" and value.strip().lower() in ("", "true", "1", "yes"):
            fields["retired"] = True
        elif name:
            raise KeyConfigError(f"{key_id}: unknown option {name!r}")
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise KeyConfigError(f"{key_id}: cannot read {path}: {exc.strerror}") from exc
    try:
        public_key = load_public_key(pem)
    except KeyConfigError as exc:
        raise KeyConfigError(f"{key_id}: {exc}") from exc
    return TrustedKey(key_id=key_id, public_key=public_key, source=f"env:{path}", **fields)


def parse_vault_entry(key_id: str, value: Any, vault_path: str) -> TrustedKey:
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise KeyConfigError(f"{key_id}: Vault value is neither PEM nor JSON") from exc
    spec = value if isinstance(value, dict) else {"pem": value}
    pem = spec.get("pem")
    if not isinstance(pem, str) or not pem.strip():
        raise KeyConfigError(f"{key_id}: Vault entry has no 'pem'")
    try:
        public_key = load_public_key(pem.encode())
    except KeyConfigError as exc:
        raise KeyConfigError(f"{key_id}: {exc}") from exc
    return TrustedKey(
        key_id=key_id,
        public_key=public_key,
        source=f"vault:{vault_path}",
        not_before=_when(spec.get("not_before"), f"{key_id} not_before"),
        not_after=_when(spec.get("not_after"), f"{key_id} not_after"),
        retired=bool(spec.get("retired", False)),
    )


def keyring_from_entries(entries: str) -> KeyRing:
    """The keys of an ``AION_COSIGN_PUBLIC_KEYS`` value; a broken entry is reported in ``errors``, never trusted.

    No Django settings are read: the module host builds its ring with this from its own environment.
    """
    ring = KeyRing()
    for entry in (e for e in entries.split(",") if e.strip()):
        try:
            ring.keys.append(parse_env_entry(entry))
        except KeyConfigError as exc:
            ring.errors.append(f"AION_COSIGN_PUBLIC_KEYS: {exc}")
    return ring


def load_keyring() -> KeyRing:
    """Every configured key (env first, then Vault); a broken entry is reported, never silently trusted."""
    ring = keyring_from_entries(settings.AION_COSIGN_PUBLIC_KEYS)
    try:
        stored = secrets.read_kv(settings.AION_COSIGN_VAULT_PATH)
    except secrets.SecretUnavailable as exc:
        ring.errors.append(str(exc))
        stored = None
    for key_id, value in (stored or {}).items():
        if ring.get(key_id):
            ring.errors.append(f"Vault key {key_id!r} duplicates an AION_COSIGN_PUBLIC_KEYS id; the env entry wins")
            continue
        try:
            ring.keys.append(parse_vault_entry(key_id, value, settings.AION_COSIGN_VAULT_PATH))
        except KeyConfigError as exc:
            ring.errors.append(f"Vault {settings.AION_COSIGN_VAULT_PATH}: {exc}")
    return ring
