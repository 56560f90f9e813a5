"""scripts/sync_secrets.sh and policies/secrets/: SOPS-encrypted examples, and Secret manifests from decrypted files."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from aion.testing.services import service_missing

ROOT = Path(settings.BASE_DIR)
SCRIPT = ROOT / "scripts" / "sync_secrets.sh"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    if not shutil.which("kubectl"):
        service_missing("kubectl", "sync_secrets.sh builds the manifests with `kubectl create secret --dry-run=client`")
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False, timeout=60)


def test_the_shipped_secrets_are_sops_encrypted_examples():
    files = sorted((ROOT / "policies" / "secrets").glob("*.enc.yaml"))
    assert files
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert doc["sops"]["version"] and doc["sops"]["mac"].startswith("ENC[AES256_GCM,")
        assert doc["sops"]["encrypted_regex"] == "^(stringData)$"
        assert doc["secret"] and doc["stringData"]
        assert all(str(v).startswith("ENC[AES256_GCM,data:") for v in doc["stringData"].values()), path


def test_dry_run_prints_secret_manifests_from_decrypted_files(tmp_path):
    plain = tmp_path / "aion-secrets.yaml"
    pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
    data = {"AION_SECRET_KEY": "a b'c\"d", "cosign.pub": pem}
    plain.write_text(yaml.safe_dump({"secret": "aion-secrets", "namespace": "aion", "stringData": data}))
    result = _run("--dry-run", "--decrypted", str(plain))
    assert result.returncode == 0, result.stderr
    manifest = next(d for d in yaml.safe_load_all(result.stdout) if d)
    assert (manifest["kind"], manifest["metadata"]["name"], manifest["metadata"]["namespace"]) == ("Secret", "aion-secrets", "aion")
    assert base64.b64decode(manifest["data"]["AION_SECRET_KEY"]).decode() == "a b'c\"d"
    assert base64.b64decode(manifest["data"]["cosign.pub"]).decode() == pem
    override = _run("--dry-run", "--decrypted", "--namespace", "staging", str(plain))
    assert yaml.safe_load(override.stdout.split("---", 1)[1])["metadata"]["namespace"] == "staging"


def test_an_encrypted_file_is_refused_when_passed_as_decrypted():
    result = _run("--dry-run", "--decrypted", str(ROOT / "policies/secrets/aion-secrets.enc.yaml"))
    assert result.returncode != 0 and "still encrypted" in result.stderr


@pytest.mark.parametrize("content", ["stringData: {A: b}\n", "secret: x\nstringData: {}\n", "secret: x\nstringData: {'bad key': v}\n"])
def test_malformed_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert _run("--dry-run", "--decrypted", str(path)).returncode != 0
