"""``modules.yml``, the module catalog: for each module its active version, manifest path and sha256 checksum.

Export writes every active manifest to a file and the catalog beside it;
import verifies EVERY checksum (and every signature) before registering
anything, so a mismatch is a hard failure that changes nothing. Manifest
paths are relative to the catalog's folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from modules import manifest as manifests
from modules import services
from modules.models import Module
from modules.trust import KeyRing, load_keyring

HEADER = """\
# AION module catalog: the active version of each module, its manifest file and that file's sha256.
# Export:  python manage.py modules_export  --tenant <tenant> [--catalog modules.yml] [--manifests-dir deploy/modules]
# Import:  python manage.py modules_import  --tenant <tenant> [--catalog modules.yml]   (every checksum is verified first)
# After re-signing (key rotation), re-export or update the sha256 lines: `sha256sum <manifest>`.
"""


class CatalogError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def file_sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class CatalogEntry:
    name: str
    version: str
    manifest_path: Path
    sha256: str


@dataclass
class ImportedEntry:
    name: str
    version: str
    created: bool
    activated: bool


def export_catalog(tenant_id: str, catalog_path: Path, manifests_dir: Path) -> list[CatalogEntry]:
    """Write the active manifest of every enabled module of TENANT and the catalog that lists them."""
    catalog_path = catalog_path.resolve()
    manifests_dir = manifests_dir if manifests_dir.is_absolute() else catalog_path.parent / manifests_dir
    manifests_dir.mkdir(parents=True, exist_ok=True)
    entries: list[CatalogEntry] = []
    modules = Module.objects.filter(tenant_id=tenant_id, enabled=True, active_version__isnull=False).select_related("active_version")
    for module in modules.order_by("name"):
        version = module.active_version
        assert version is not None
        path = manifests_dir / f"{module.name}-{version.version}.yaml"
        data = yaml.safe_dump(version.manifest, sort_keys=False, allow_unicode=True).encode()
        path.write_bytes(data)
        entries.append(CatalogEntry(module.name, version.version, path, file_sha256(data)))
    document = {
        "tenant": tenant_id,
        "exported_at": timezone.now().replace(microsecond=0).isoformat(),
        "modules": [
            {"name": e.name, "version": e.version, "manifest": _relative(e.manifest_path, catalog_path.parent), "sha256": e.sha256}
            for e in entries
        ],
    }
    catalog_path.write_text(HEADER + yaml.safe_dump(document, sort_keys=False))
    return entries


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())


def read_catalog(catalog_path: Path) -> tuple[str | None, list[CatalogEntry]]:
    try:
        document = yaml.safe_load(catalog_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError([f"{catalog_path}: cannot read the catalog: {exc}"]) from exc
    if not isinstance(document, dict) or not isinstance(document.get("modules", []), list):
        raise CatalogError([f"{catalog_path}: expected a mapping with a 'modules' list"])
    problems: list[str] = []
    entries: list[CatalogEntry] = []
    for index, item in enumerate(document.get("modules") or []):
        required = ("name", "version", "manifest", "sha256")
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k) for k in required):
            problems.append(f"modules.{index}: needs string name, version, manifest and sha256")
            continue
        path = Path(item["manifest"])
        resolved = path if path.is_absolute() else catalog_path.parent / path
        entries.append(CatalogEntry(item["name"], item["version"], resolved, item["sha256"]))
    if problems:
        raise CatalogError(problems)
    tenant = document.get("tenant")
    return (str(tenant) if tenant else None), entries


def load_verified(catalog_path: Path) -> tuple[str | None, list[tuple[CatalogEntry, dict[str, Any]]]]:
    """Every entry with its parsed manifest, after checking every checksum; CatalogError lists all mismatches."""
    tenant, entries = read_catalog(catalog_path)
    problems: list[str] = []
    loaded: list[tuple[CatalogEntry, dict[str, Any]]] = []
    for entry in entries:
        try:
            data = entry.manifest_path.read_bytes()
        except OSError as exc:
            problems.append(f"{entry.name}: cannot read {entry.manifest_path}: {exc.strerror}")
            continue
        actual = file_sha256(data)
        if actual != entry.sha256:
            problems.append(f"{entry.name}: checksum mismatch for {entry.manifest_path}: catalog says {entry.sha256}, file is {actual}")
            continue
        try:
            document = manifests.parse_yaml(data)
        except manifests.ManifestInvalid as exc:
            problems.append(f"{entry.name}: {exc}")
            continue
        if not isinstance(document, dict) or document.get("name") != entry.name or str(document.get("version")) != entry.version:
            problems.append(f"{entry.name}: {entry.manifest_path} is not {entry.name} {entry.version}")
            continue
        loaded.append((entry, document))
    if problems:
        raise CatalogError(problems)
    return tenant, loaded


def _check_manifests(loaded: list[tuple[CatalogEntry, dict[str, Any]]]) -> None:
    problems = []
    for entry, document in loaded:
        errors = manifests.validate(document)
        if errors:
            problems.append(f"{entry.name}: invalid manifest: " + "; ".join(f"{p}: {', '.join(m)}" for p, m in errors.items()))
    if problems:
        raise CatalogError(problems)


def check_catalog(catalog_path: Path) -> list[CatalogEntry]:
    """Checksums and manifests (schema, name, version) of every entry, signatures left out; registers nothing.

    For places without the trusted keys (a CI job before deploy); the import itself always verifies signatures.
    """
    _, loaded = load_verified(catalog_path)
    _check_manifests(loaded)
    return [entry for entry, _ in loaded]


def import_catalog(
    catalog_path: Path, *, tenant_id: str | None, actor: Any, dry_run: bool = False, keyring: KeyRing | None = None
) -> tuple[str, list[ImportedEntry]]:
    """Register and activate every catalog entry, or nothing: checksums, manifests and signatures are checked first."""
    catalog_tenant, loaded = load_verified(catalog_path)
    tenant = tenant_id or catalog_tenant
    if not tenant:
        raise CatalogError(["no tenant: pass --tenant or set 'tenant' in the catalog"])
    ring = keyring if keyring is not None else load_keyring()
    _check_manifests(loaded)
    problems = []
    for entry, document in loaded:
        try:
            services.verify_or_refuse(document, tenant_id=tenant, actor=actor, action="import", keyring=ring)
        except services.SignatureRefused as exc:
            problems.append(f"{entry.name} {entry.version}: {exc.detail}")
    if problems:
        raise CatalogError(problems)
    if dry_run:
        return tenant, [ImportedEntry(e.name, e.version, created=False, activated=False) for e, _ in loaded]
    imported = []
    with transaction.atomic():
        for entry, document in loaded:
            reason = f"modules_import {catalog_path.name}"
            result = services.register_module(tenant, document, actor=actor, activate=True, reason=reason, keyring=ring)
            imported.append(ImportedEntry(entry.name, entry.version, result.created, result.activated))
    return tenant, imported
