"""A module's signature covers the whole manifest (issue 15 §4): DSSE + in-toto, checked on register, reverify and rollback.

The documented operator flow is ``modules_predicate`` -> ``cosign attest-blob`` -> ``modules_predicate --attach``.
With a ``cosign`` binary on PATH the test runs it; without one (this machine) ``cosign_attest_blob`` below
does what ``cosign attest-blob --key --hash --type --predicate --output-signature`` does (cosign 2.x,
cmd/cosign/cli/attest/attest_blob.go): an in-toto v0.1 statement with subject ``{name: path.Base(arg),
digest: {sha256: --hash}}``, the predicate file's JSON, DSSE over it with the key's ECDSA P-256 SHA-256.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from aion.models import AuditRecord, SecurityIncident
from aion.testing.factories import TENANT
from aion.testing.module_releases import CosignKey, build_manifest, digest_of, register, resign
from modules import manifest as manifests
from modules.choices import SignatureFailure
from modules.models import Module, ModuleVersion
from modules.signing import PREDICATE_TYPE, SignatureRejected, pae, sign_manifest, verify_manifest
from modules.trust import load_keyring


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def cosign_attest_blob(key: CosignKey, predicate: Path, predicate_type: str, digest_hex: str, artifact: str, output: Path) -> None:
    """What ``cosign attest-blob --key K --type T --predicate P --hash H --output-signature O ARTIFACT`` writes to O."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": artifact.rsplit("/", 1)[-1], "digest": {"sha256": digest_hex}}],
        "predicate": json.loads(predicate.read_text()),
    }
    body = json.dumps(statement, separators=(",", ":")).encode()
    payload_type = "application/vnd.in-toto+json"
    message = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(body), body)
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(body).decode(),
        "signatures": [{"keyid": "", "sig": key.sign(message)}],
    }
    output.write_text(json.dumps(envelope, separators=(",", ":")))


def documented_command(prefix: str) -> list[str]:
    """The first command in docs/modules.md starting with PREFIX, continuation lines joined."""
    lines = (Path(__file__).resolve().parents[2] / "docs" / "modules.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(prefix))
    end = next(i for i in range(start, len(lines)) if not lines[i].rstrip().endswith("\\"))
    return " ".join(lines[start : end + 1]).replace("\\", " ").split()


def flag_names(argv: list[str]) -> set[str]:
    return {token.partition("=")[0] for token in argv if token.startswith("--")}


def sign_the_documented_way(manifest_path: Path, tmp_path: Path, key: CosignKey | None, key_id: str) -> Path:
    """modules_predicate -> cosign attest-blob (the binary when there is one) -> modules_predicate --attach."""
    predicate, instructions = run("modules_predicate", str(manifest_path))
    (tmp_path / "predicate.json").write_text(predicate)
    lines = instructions.splitlines()
    start = next(i for i, line in enumerate(lines) if "cosign attest-blob" in line)
    end = next(i for i in range(start, len(lines)) if not lines[i].rstrip().endswith("\\"))
    argv = " ".join(lines[start : end + 1]).replace("\\", " ").split()  # the printed command, continuation lines joined
    assert argv[:2] == ["cosign", "attest-blob"] and "--hash" in argv and "--type" in argv
    assert flag_names(argv) == flag_names(documented_command("cosign attest-blob"))  # what docs/modules.md tells operators
    envelope = tmp_path / "envelope.json"
    if key is None:  # the real binary, with the key pair it generated in tmp_path
        subprocess.run(argv, cwd=tmp_path, check=True, timeout=60, env={**os.environ, "COSIGN_PASSWORD": "test"}, capture_output=True)
    else:
        flags, tokens = {}, iter(argv[2:-1])
        for token in tokens:
            name, sep, value = token.partition("=")
            flags[name] = value if sep else next(tokens)
        assert flags["--key"] == "cosign.key" and flags["--tlog-upload"] == "false"
        cosign_attest_blob(
            key, tmp_path / flags["--predicate"], flags["--type"], flags["--hash"], argv[-1], tmp_path / flags["--output-signature"]
        )
    signed, _ = run("modules_predicate", str(manifest_path), "--attach", str(envelope), "--key-id", key_id)
    signed_path = tmp_path / "signed.yaml"
    signed_path.write_text(signed)
    return signed_path


@pytest.mark.django_db
def test_a_manifest_signed_the_documented_way_registers(keys, tmp_path, admin_client):
    unsigned = build_manifest(None, version="1.1.0")
    manifest_path = tmp_path / "summarizer-1.1.0.yaml"
    manifest_path.write_text(yaml.safe_dump(unsigned))
    if shutil.which("cosign"):
        subprocess.run(["cosign", "generate-key-pair"], cwd=tmp_path, check=True, timeout=60, env={**os.environ, "COSIGN_PASSWORD": "test"})
        keys.settings.AION_COSIGN_PUBLIC_KEYS = f"k2026={tmp_path / 'cosign.pub'}"
        signer = None
    else:
        signer = keys.new("k2026")
    signed_path = sign_the_documented_way(manifest_path, tmp_path, signer, "k2026")
    response = admin_client.generic("POST", "/v1/modules", signed_path.read_bytes(), content_type="application/yaml")
    assert response.status_code == 201, response.json()
    version = ModuleVersion.objects.get()
    assert version.signature_key_id == "k2026"
    statement = json.loads(base64.b64decode(version.manifest["signature"]["dsse"]["payload"]))
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["predicate"]["manifest_sha256"] == hashlib.sha256(manifests.canonical_json(unsigned)).hexdigest()


def test_cosign_1x_base64_envelopes_and_sigstore_bundles_verify_too(key, tmp_path):
    manifest = build_manifest(key)
    envelope = manifest["signature"]["dsse"]
    as_base64 = {**manifest, "signature": {"dsse": base64.b64encode(json.dumps(envelope).encode()).decode()}}
    as_text = {**manifest, "signature": {"dsse": json.dumps(envelope)}}
    as_bundle = {
        **manifest,
        "signature": {"dsse": {"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.3", "dsseEnvelope": envelope}},
    }
    for variant in (as_base64, as_text, as_bundle):
        assert verify_manifest(variant).key_id == "k2026"


def test_the_signed_bytes_are_the_dsse_pae_and_the_predicate_is_the_canonical_sha256(key):
    # DSSE v1 spec example: the lengths are in bytes, ASCII decimal, single spaces.
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    manifest = build_manifest(key)
    shuffled = json.loads(json.dumps(dict(reversed(list(copy.deepcopy(manifest).items())))))
    assert manifests.signed_sha256(manifest) == manifests.signed_sha256(shuffled)  # key order is not content
    assert manifests.signed_sha256(manifest) == manifests.signed_sha256({**manifest, "signature": {"ref": "x"}})  # nor the signature
    expected = json.dumps({k: v for k, v in manifest.items() if k != "signature"}, sort_keys=True, separators=(",", ":")).encode()
    assert manifests.canonical_json(manifests.signed_content(manifest)) == expected
    assert verify_manifest(yaml.safe_load(yaml.safe_dump(manifest))).key_id == "k2026"  # YAML and JSON alike


def test_the_sign_helper_for_sample_manifests_and_a_plain_key_list(key):
    unsigned = build_manifest(None, name="echo")
    signed = sign_manifest(unsigned, key.private, key_id="k2026")
    verified = verify_manifest(signed, load_keyring().keys)  # any iterable of TrustedKey, as the module host passes
    assert (verified.key_id, verified.manifest_sha256) == ("k2026", manifests.signed_sha256(unsigned))


def widen_permissions(m: dict[str, Any]) -> None:
    m["permissions"] = {
        "network": ["exfil.example.com:443"],
        "filesystem": "read-write",
        "secrets": ["secret/data/payments", "secret/data/platform"],
    }


TAMPERING = {
    "endpoint": lambda m: m.update(endpoint="http://attacker.example.com:8080"),
    "widened permissions": widen_permissions,
    "intents": lambda m: m.update(intents=["summarize.*", "admin.*"]),
    "image digest": lambda m: m.update(image=m["image"].split("@")[0] + "@" + digest_of("backdoored")),
    "resources": lambda m: m["resources"].update(memory="64Gi"),
    "health path": lambda m: m.update(health_path="/"),
    "version": lambda m: m.update(version="1.1.1"),
    "runtime": lambda m: m.update(runtime="python3.12"),
}


def assert_manifest_mismatch(response: Any, action: str) -> SecurityIncident:
    assert response.status_code == 422, response.json()
    problem = response.json()
    assert problem["type"] == "urn:aion:problem:manifest-mismatch"
    assert problem["reason"] == "manifest_mismatch"
    incident = SecurityIncident.objects.get(pk=problem["incident_id"])
    assert (incident.kind, incident.reason, incident.details["action"]) == ("module_signature", "manifest_mismatch", action)
    return incident


@pytest.mark.django_db
@pytest.mark.parametrize("change", list(TAMPERING))
def test_reusing_a_signature_on_a_changed_manifest_is_a_422_manifest_mismatch_with_an_incident(change, key, admin_client):
    signed = build_manifest(key, version="1.1.0")
    assert verify_manifest(signed).key_id == "k2026"
    tampered = copy.deepcopy(signed)
    TAMPERING[change](tampered)
    response = admin_client.post("/v1/modules", {"manifest": tampered, "activate": True}, format="json")
    assert_manifest_mismatch(response, "register")
    assert AuditRecord.objects.filter(action="module.register", result="denied").count() == 1
    assert not ModuleVersion.objects.exists()


@pytest.mark.django_db
def test_the_reported_attack_new_endpoint_and_wider_permissions_under_the_1_1_0_signature(key, admin_client):
    signed = build_manifest(key, version="1.1.0")
    assert admin_client.post("/v1/modules", {"manifest": signed}, format="json").status_code == 201
    for version in ("1.1.0", "1.2.0"):
        tampered = copy.deepcopy(signed)
        tampered.update(version=version, endpoint="http://attacker.example.com:8080")
        widen_permissions(tampered)
        assert_manifest_mismatch(admin_client.post("/v1/modules", {"manifest": tampered}, format="json"), "register")
    assert list(ModuleVersion.objects.values_list("version", "endpoint")) == [("1.1.0", signed["endpoint"])]
    # Re-signed by the key holder, the same change is a legitimate new version.
    honest = resign({**signed, "version": "1.2.0", "endpoint": "http://summarizer-v2:8080"}, key)
    assert admin_client.post("/v1/modules", {"manifest": honest}, format="json").status_code == 201


def test_the_register_command_refuses_a_mismatch_too(db, key, tmp_path):
    tampered = build_manifest(key)
    tampered["endpoint"] = "http://attacker.example.com:8080"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(tampered))
    with pytest.raises(CommandError, match="manifest_mismatch"):
        run("modules_register", str(path), "--tenant", TENANT)


def tamper_stored(name: str, version: str, **changes: Any) -> None:
    """What an attacker with database access does: ``update()`` past ModuleVersion's immutability."""
    row = ModuleVersion.objects.get(module__name=name, version=version)
    manifest_changes = changes.pop("manifest", None)
    if manifest_changes:
        changes["manifest"] = {**row.manifest, **manifest_changes}
    ModuleVersion.objects.filter(pk=row.pk).update(**changes)


def active(name: str = "summarizer") -> str:
    return Module.objects.select_related("active_version").get(name=name).active_version.version


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["stored manifest", "endpoint column"])
def test_rollback_to_a_version_tampered_in_the_database_is_refused(where, key, admin_client):
    register(key, "1.0.0")
    register(key, "1.1.0")
    evil = "http://attacker.example.com:8080"
    tamper_stored("summarizer", "1.0.0", **({"manifest": {"endpoint": evil}} if where == "stored manifest" else {"endpoint": evil}))
    response = admin_client.post("/v1/modules/summarizer/rollback", {"reason": "1.1.0 is slow"}, format="json")
    assert_manifest_mismatch(response, "rollback")
    assert active() == "1.1.0"
    response = admin_client.post("/v1/modules/summarizer/activate", {"version": "1.0.0"}, format="json")
    assert_manifest_mismatch(response, "activate")
    assert active() == "1.1.0"


def test_reverify_after_key_rotation_rechecks_the_whole_manifest(db, keys):
    old = keys.new("k2025")
    register(old, name="stable")
    register(old, name="tampered")
    new = keys.new("k2026")  # rotation: the new key is added next to the old one
    register(new, "1.0.1", name="stable")
    assert "2 checked, 0 failing" in run("modules_reverify")[0]

    tamper_stored("tampered", "1.0.0", manifest={"intents": ["summarize.*", "admin.*"]})
    with pytest.raises(CommandError, match="1 module"):
        run("modules_reverify")
    incident = SecurityIncident.objects.get()  # tampering is an incident even in a report
    assert (incident.reason, incident.details["action"]) == ("manifest_mismatch", "reverify")
    assert Module.objects.get(name="tampered").enabled  # ... but a report changes nothing

    keys.retire("k2025")
    output = run("modules_reverify", "--enforce")[0]
    assert "OK    acme/stable 1.0.1 verified by k2026" in output
    assert "FAIL  acme/tampered 1.0.0 (registered with k2025): manifest_mismatch" in output
    assert not Module.objects.get(name="tampered").enabled


def test_reverify_lists_modules_registered_with_the_old_image_only_signatures(db, key):
    """After the upgrade, a version registered under the old format fails reverify with legacy_signature (re-sign it)."""
    register(key, name="legacy")
    row = ModuleVersion.objects.get(module__name="legacy")
    digest = row.image_digest
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": row.image.split("@")[0].rsplit(":", 1)[0]},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    legacy = {**row.manifest, "signature": {"payload": base64.b64encode(payload).decode(), "signature": key.sign(payload)}}
    ModuleVersion.objects.filter(pk=row.pk).update(manifest=legacy)
    with pytest.raises(CommandError, match="1 module"):
        run("modules_reverify")
    with pytest.raises(SignatureRejected) as caught:
        verify_manifest(legacy)
    assert caught.value.reason == SignatureFailure.LEGACY_FORMAT
