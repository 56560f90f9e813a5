"""The ``verify-cosign`` deploy gate: .github/workflows/verify-cosign.yml is a valid GitHub workflow (the
vendored schema of check-jsonschema, offline), every action is pinned by commit SHA, the verify step fails
closed, scripts/module_images.py lists the shipped catalog's images and refuses an empty one, and the
shipped modules.yml names a real example whose checksum ``modules_import --dry-run`` verifies."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(settings.BASE_DIR)
WORKFLOW = ROOT / ".github" / "workflows" / "verify-cosign.yml"
SCRIPT = ROOT / "scripts" / "module_images.py"
CATALOG = ROOT / "modules.yml"
README = ROOT / "deploy" / "cosign" / "README.md"
SHA_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
PINNED_IMAGE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
TIMEOUT = 120


def _workflow() -> dict[str, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text()))


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as True.
    return dict(workflow.get("on") or workflow.get(True) or {})


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _verify_step(workflow: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in _steps(workflow) if s.get("name") == "verify-cosign"]
    return step


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "check-jsonschema"
    # No network: the vendor.github-workflows schema ships inside the package.
    return subprocess.run(
        [str(binary), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _images(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=TIMEOUT, check=False)


def _copy_catalog(tmp_path: Path) -> Path:
    """The shipped catalog and its manifests under TMP_PATH, same relative layout."""
    catalog = tmp_path / "modules.yml"
    shutil.copy(CATALOG, catalog)
    for entry in yaml.safe_load(CATALOG.read_text())["modules"]:
        target = tmp_path / entry["manifest"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / entry["manifest"], target)
    return catalog


# --- the workflow file ------------------------------------------------------------------------------


def test_the_workflow_is_a_valid_github_workflow(tmp_path):
    result = _check_jsonschema(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = _workflow()
    _verify_step(broken)["continue-on-error"] = "sometimes"  # not a boolean or expression: the schema must say so
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert _check_jsonschema(tmp_path / "broken.yml").returncode != 0


def test_it_runs_on_a_push_to_main_and_on_a_dispatch_with_an_environment():
    workflow = _workflow()
    triggers = _triggers(workflow)
    assert triggers["push"]["branches"] == ["main"]
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["type"] == "environment" and inputs["environment"]["required"] is True
    assert inputs["nothing_to_deploy"] == {**inputs["nothing_to_deploy"], "type": "boolean", "default": False}
    (job,) = workflow["jobs"].values()
    assert "inputs.environment" in job["environment"]
    assert workflow["permissions"] == {"contents": "read"}


def test_every_action_is_pinned_by_commit_sha():
    workflow = _workflow()
    uses = [step["uses"] for step in _steps(workflow) if "uses" in step]
    uses += [job["uses"] for job in workflow["jobs"].values() if "uses" in job]
    assert {u.split("@")[0] for u in uses} >= {"actions/checkout", "sigstore/cosign-installer"}
    assert [u for u in uses if not SHA_PINNED.match(u)] == []
    # A reader sees which release each SHA is.
    for line in (line for line in WORKFLOW.read_text().splitlines() if "uses:" in line):
        assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_the_verify_step_fails_closed():
    workflow = _workflow()
    assert "continue-on-error" not in WORKFLOW.read_text()  # neither on the job nor on any step
    step = _verify_step(workflow)
    assert "continue-on-error" not in step and "if" not in step
    run = step["run"]
    assert run.lstrip().startswith("set -euo pipefail")
    assert 'cosign verify --key "$RUNNER_TEMP/cosign.pub"' in run
    assert "|| true" not in run and "|| :" not in run
    for s in _steps(workflow):
        if "run" in s:
            assert s["run"].lstrip().startswith("set -euo pipefail"), s["name"]
    # The key comes from the COSIGN_PUBLIC_KEY variable (or secret), and an unset one fails.
    (key_step,) = [s for s in _steps(workflow) if "COSIGN_PUBLIC_KEY" in s.get("env", {})]
    assert "vars.COSIGN_PUBLIC_KEY" in key_step["env"]["COSIGN_PUBLIC_KEY"]
    assert "exit 1" in key_step["run"]


def _run_step(step: dict[str, Any], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert "${{" not in step["run"], "the script must take its inputs from env, not from expressions"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_the_steps_scripts_fail_the_job_on_a_bad_signature_and_on_an_empty_catalog(tmp_path):
    """Runs the workflow's own `run:` scripts with bash. ``cosign`` is a stand-in (the registries here have no
    cosign binary and no registry holds the example image): it fails for the image named in BAD_IMAGE, the
    way `cosign verify` exits non-zero on a missing or bad signature."""
    workflow = _workflow()
    (list_step,) = [s for s in _steps(workflow) if s.get("name") == "List the module images of modules.yml"]
    verify = _verify_step(workflow)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    fake = bin_dir / "cosign"
    fake.write_text('#!/bin/sh\necho "$@" >> "$RUNNER_TEMP/cosign-calls"\nfor a; do [ "$a" = "$BAD_IMAGE" ] && exit 1; done\nexit 0\n')
    fake.chmod(0o755)
    runner = tmp_path / "runner"
    runner.mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(runner), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    env |= {"NOTHING_TO_DEPLOY": "false", "COSIGN_REQUIRE_TLOG": "false", "BAD_IMAGE": "none"}
    listed = _run_step(list_step, env, ROOT)
    assert listed.returncode == 0, listed.stderr
    images = (runner / "module-images.txt").read_text().split()
    assert images and all(PINNED_IMAGE.match(i) for i in images)
    ok = _run_step(verify, env, ROOT)
    assert ok.returncode == 0, ok.stderr
    assert (runner / "cosign-calls").read_text().split("\n")[
        0
    ] == f"verify --key {runner}/cosign.pub --insecure-ignore-tlog=true {images[0]}"
    bad = _run_step(verify, env | {"BAD_IMAGE": images[0]}, ROOT)
    assert bad.returncode != 0
    # An empty catalog stops the job before any verification, unless nothing is to be deployed.
    empty = tmp_path / "empty"
    (empty / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, empty / "scripts")
    (empty / "modules.yml").write_text("tenant: default\nmodules: []\n")
    assert _run_step(list_step, env, empty).returncode != 0
    assert _run_step(list_step, env | {"NOTHING_TO_DEPLOY": "true"}, empty).returncode == 0
    nothing = _run_step(verify, env, empty)
    assert nothing.returncode == 0 and "nothing to deploy" in nothing.stdout


# --- scripts/module_images.py ---------------------------------------------------------------------


def test_the_image_list_of_the_shipped_catalog():
    result = _images(str(CATALOG))
    assert result.returncode == 0, result.stderr
    images = result.stdout.split()
    expected = [yaml.safe_load((ROOT / e["manifest"]).read_text())["image"] for e in yaml.safe_load(CATALOG.read_text())["modules"]]
    assert images == expected and images
    assert all(PINNED_IMAGE.match(image) for image in images)


@pytest.mark.parametrize("content", ["", "tenant: default\n", "tenant: default\nmodules: []\n"])
def test_an_empty_catalog_fails_unless_nothing_is_deployed(tmp_path, content):
    catalog = tmp_path / "modules.yml"
    catalog.write_text(content)
    result = _images(str(catalog))
    assert result.returncode == 2 and "lists no modules" in result.stderr
    allowed = _images(str(catalog), "--allow-empty")
    assert allowed.returncode == 0 and allowed.stdout == ""


def test_a_tampered_manifest_or_an_unpinned_image_fails_the_list(tmp_path):
    catalog = _copy_catalog(tmp_path)
    entry = yaml.safe_load(catalog.read_text())["modules"][0]
    manifest = tmp_path / entry["manifest"]
    manifest.write_text(manifest.read_text().replace("network: none", "network: cluster"))
    result = _images(str(catalog))
    assert result.returncode == 1 and "checksum mismatch" in result.stderr and result.stdout == ""
    # Re-hashed, but the image is a tag only: cosign must verify a digest, so this is refused too.
    text = re.sub(r"^image: .*$", "image: ghcr.io/omertaos/aion-module-echo:1.0.0", manifest.read_text(), flags=re.M)
    manifest.write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    catalog.write_text(re.sub(r'sha256: "sha256:[0-9a-f]+"', f'sha256: "sha256:{digest}"', catalog.read_text()))
    result = _images(str(catalog))
    assert result.returncode == 1 and "not pinned" in result.stderr


# --- modules.yml and modules_import --dry-run -------------------------------------------------------


def test_the_shipped_catalog_lists_an_example_whose_checksum_modules_import_verifies(capsys):
    document = yaml.safe_load(CATALOG.read_text())
    assert len(document["modules"]) >= 1
    call_command("modules_import", "--catalog", str(CATALOG), "--dry-run", "--checksums-only")
    out = capsys.readouterr().out
    for entry in document["modules"]:
        assert f"{entry['name']} {entry['version']}: checksum verified" in out


def test_a_tampered_copy_of_the_shipped_catalog_is_refused(tmp_path, capsys):
    catalog = _copy_catalog(tmp_path)
    call_command("modules_import", "--catalog", str(catalog), "--dry-run", "--checksums-only")  # the copy itself is fine
    entry = yaml.safe_load(catalog.read_text())["modules"][0]
    manifest = tmp_path / entry["manifest"]
    manifest.write_text(manifest.read_text().replace("intents: [echo]", "intents: [echo, chat.*]"))
    with pytest.raises(CommandError, match="refused"):
        call_command("modules_import", "--catalog", str(catalog), "--dry-run", "--checksums-only")
    assert "checksum mismatch" in capsys.readouterr().err


def test_checksums_only_is_a_dry_run_option():
    # An import always verifies signatures; skipping them is only allowed when nothing is registered.
    with pytest.raises(CommandError, match="needs --dry-run"):
        call_command("modules_import", "--catalog", str(CATALOG), "--checksums-only")


# --- deploy/cosign/README.md ------------------------------------------------------------------------


def test_the_cosign_readme_describes_the_workflow_as_it_is():
    text = README.read_text()
    assert ".github/workflows/verify-cosign.yml" in text and "a CI step such as" not in text
    workflow = _workflow()
    for name in _triggers(workflow)["workflow_dispatch"]["inputs"]:
        assert f"`{name}`" in text
    for variable in ("COSIGN_PUBLIC_KEY", "COSIGN_REQUIRE_TLOG", "MODULE_REGISTRY", "scripts/module_images.py"):
        assert variable in text
    installer = next(s["uses"] for s in _steps(workflow) if s.get("uses", "").startswith("sigstore/cosign-installer@"))
    assert installer.split("@")[1] in text  # the pinned SHA the README names is the one in use
