"""``modules_reverify [--enforce]`` after a key rotation, and the register/rollback/keys commands."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from aion.models import AuditRecord, OutboxEvent, SecurityIncident
from aion.testing.factories import TENANT
from aion.testing.module_releases import build_manifest, register
from modules.models import Module
from modules.selectors import active_module_targets


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_reverify_reports_then_enforce_disables(db, keys):
    old = keys.new("k2025")
    new = keys.new("k2026")
    register(old, name="legacy")
    register(new, name="current")
    assert "2 checked, 0 failing" in run("modules_reverify")

    keys.retire("k2025")  # rotation done: re-sign or lose the module
    with pytest.raises(CommandError, match="1 module"):
        run("modules_reverify")
    assert Module.objects.get(name="legacy").enabled  # a report changes nothing

    output = run("modules_reverify", "--enforce")
    assert "FAIL  acme/legacy 1.0.0 (registered with k2025): retired_key" in output
    assert "DISABLED" in output
    legacy = Module.objects.get(name="legacy")
    assert not legacy.enabled and "retired_key" in legacy.disabled_reason
    assert [t.name for t in active_module_targets(TENANT)] == ["current"]
    assert AuditRecord.objects.filter(action="module.disable").count() == 1
    assert OutboxEvent.objects.filter(event_type="modules.release.disabled").count() == 1
    assert SecurityIncident.objects.get().reason == "retired_key"
    # Nothing left to fail: enabled modules only.
    assert "1 checked, 0 failing" in run("modules_reverify", "--enforce")


def test_re_signing_with_the_new_key_brings_it_back(db, keys, tmp_path):
    old = keys.new("k2025")
    register(old, name="legacy")
    new = keys.new("k2026")
    keys.retire("k2025")
    run("modules_reverify", "--enforce")
    path = tmp_path / "legacy.yaml"
    path.write_text(yaml.safe_dump(build_manifest(new, name="legacy", version="1.0.1")))
    assert "activated" in run("modules_register", str(path), "--activate", "--tenant", TENANT)
    assert [(t.name, t.version) for t in active_module_targets(TENANT)] == [("legacy", "1.0.1")]
    report = run("modules_keys", "--tenant", TENANT)
    assert "k2025" in report and "retired" in report and "0 module(s) would fail" in report


def test_rollback_command(db, key):
    register(key, "1.0.0")
    register(key, "2.0.0")
    assert "rolled back to 1.0.0" in run("modules_rollback", "summarizer", "--reason", "bad release", "--tenant", TENANT)
    with pytest.raises(CommandError):
        run("modules_rollback", "nope", "--reason", "x", "--tenant", TENANT)
    with pytest.raises(CommandError):
        run("modules_rollback", "summarizer", "--reason", "x", "--tenant", TENANT, "--to-version", "1.0.0")
