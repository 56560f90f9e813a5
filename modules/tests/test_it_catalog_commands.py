"""modules.yml: ``modules_export`` then ``modules_import`` (every checksum verified; a mismatch changes nothing)."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from aion.models import SecurityIncident
from aion.testing.factories import OTHER_TENANT, TENANT
from aion.testing.module_releases import build_manifest, register
from modules.catalog import file_sha256
from modules.models import Module, ModuleVersion
from modules.selectors import active_module_targets


def export(tmp_path, tenant=TENANT):
    catalog = tmp_path / "modules.yml"
    call_command("modules_export", "--tenant", tenant, "--catalog", str(catalog), "--manifests-dir", "manifests")
    return catalog


def test_export_then_import_into_another_tenant(db, key, tmp_path):
    register(key, "1.0.0")
    register(key, "1.1.0")
    register(key, "0.2.0", name="embedder", intents=("embed.*",))
    catalog = export(tmp_path)
    document = yaml.safe_load(catalog.read_text())
    assert document["tenant"] == TENANT
    entries = {e["name"]: e for e in document["modules"]}
    assert entries["summarizer"]["version"] == "1.1.0"
    assert entries["summarizer"]["manifest"] == "manifests/summarizer-1.1.0.yaml"
    assert entries["summarizer"]["sha256"] == file_sha256((tmp_path / "manifests/summarizer-1.1.0.yaml").read_bytes())

    call_command("modules_import", "--tenant", OTHER_TENANT, "--catalog", str(catalog))
    assert {(t.name, t.version) for t in active_module_targets(OTHER_TENANT)} == {("summarizer", "1.1.0"), ("embedder", "0.2.0")}
    # Importing again is idempotent (identical content).
    call_command("modules_import", "--tenant", OTHER_TENANT, "--catalog", str(catalog))
    assert ModuleVersion.objects.filter(tenant_id=OTHER_TENANT).count() == 2


def test_a_checksum_mismatch_is_a_hard_failure_and_imports_nothing(db, key, tmp_path):
    register(key, "1.0.0")
    register(key, "0.2.0", name="embedder", intents=("embed.*",))
    catalog = export(tmp_path)
    manifest_file = tmp_path / "manifests/summarizer-1.0.0.yaml"
    manifest_file.write_text(manifest_file.read_text().replace("http://127.0.0.1:9", "http://10.6.6.6:9"))
    with pytest.raises(CommandError, match="nothing changed"):
        call_command("modules_import", "--tenant", OTHER_TENANT, "--catalog", str(catalog))
    assert not Module.objects.filter(tenant_id=OTHER_TENANT).exists()  # embedder was fine, but nothing is imported


def test_a_tampered_checksum_line_and_a_missing_file_fail(db, key, tmp_path):
    register(key, "1.0.0")
    catalog = export(tmp_path)
    catalog.write_text(re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, catalog.read_text()))
    with pytest.raises(CommandError):
        call_command("modules_import", "--tenant", OTHER_TENANT, "--catalog", str(catalog))
    (tmp_path / "manifests/summarizer-1.0.0.yaml").unlink()
    with pytest.raises(CommandError):
        call_command("modules_import", "--tenant", OTHER_TENANT, "--catalog", str(catalog))
    assert not Module.objects.filter(tenant_id=OTHER_TENANT).exists()


def test_a_correct_checksum_over_a_bad_signature_is_refused_with_an_incident(db, keys, tmp_path):
    trusted = keys.new("k2026")
    foreign = keys.new("foreign", trusted=False)
    good = yaml.safe_dump(build_manifest(trusted, name="good")).encode()
    bad = yaml.safe_dump(build_manifest(foreign, name="bad")).encode()
    (tmp_path / "good.yaml").write_bytes(good)
    (tmp_path / "bad.yaml").write_bytes(bad)
    catalog = tmp_path / "modules.yml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "modules": [
                    {"name": "good", "version": "1.0.0", "manifest": "good.yaml", "sha256": file_sha256(good)},
                    {"name": "bad", "version": "1.0.0", "manifest": "bad.yaml", "sha256": file_sha256(bad)},
                ]
            }
        )
    )
    with pytest.raises(CommandError):
        call_command("modules_import", "--tenant", TENANT, "--catalog", str(catalog))
    assert not Module.objects.exists()
    assert SecurityIncident.objects.get().details["action"] == "import"


def test_the_shipped_catalog_is_valid_and_imports(db, settings):
    # The shipped example has no signature anyone can resolve here: checksums and manifests only.
    call_command("modules_import", "--tenant", TENANT, "--catalog", str(settings.BASE_DIR / "modules.yml"), "--dry-run", "--checksums-only")
