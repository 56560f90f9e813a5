"""Manifest signature verification (DSSE in-toto): every failure mode is a 422, an incident and an audit record, never an activation.

Keys are generated in the test and signatures made as ``cosign attest-blob --key`` makes them (conftest).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from aion.models import AuditRecord, OutboxEvent, SecurityIncident
from aion.testing.module_releases import REGISTRY, build_manifest, digest_of, statement_for
from modules.choices import SignatureFailure
from modules.models import Module, ModuleVersion
from modules.signing import PREDICATE_TYPE, SignatureRejected, verify_manifest
from modules.trust import load_keyring, parse_vault_entry


def reason_of(manifest):
    with pytest.raises(SignatureRejected) as caught:
        verify_manifest(manifest)
    return caught.value.reason


def test_a_correct_signature_verifies_with_its_key_id(keys):
    key = keys.new("k2026")
    keys.new("k2027")  # several keys may be active at once
    verified = verify_manifest(build_manifest(key))
    assert verified.key_id == "k2026"
    assert verified.fingerprint.startswith("sha256:")


def test_a_tampered_digest_fails(key):
    manifest = build_manifest(key, signed_digest=digest_of("something else"))
    assert reason_of(manifest) == SignatureFailure.DIGEST_MISMATCH


def test_changing_the_image_after_signing_fails(key):
    manifest = build_manifest(key)
    manifest["image"] = manifest["image"].split("@")[0] + "@" + digest_of("swapped")
    assert reason_of(manifest) == SignatureFailure.MANIFEST_MISMATCH


def test_a_foreign_key_fails(keys):
    keys.new("k2026")
    foreign = keys.new("attacker", trusted=False)
    assert reason_of(build_manifest(foreign)) == SignatureFailure.BAD


def test_a_retired_key_fails(keys):
    key = keys.new("k2025")
    keys.retire("k2025")
    assert reason_of(build_manifest(key)) == SignatureFailure.RETIRED_KEY


def test_a_key_past_its_validity_window_is_retired_and_a_future_one_is_not_yet_trusted(keys):
    now = timezone.now()
    old = keys.new("old", not_after=(now - timedelta(days=1)).isoformat())
    future = keys.new("future", not_before=(now + timedelta(days=1)).date().isoformat())
    assert reason_of(build_manifest(old)) == SignatureFailure.RETIRED_KEY
    assert reason_of(build_manifest(future)) == SignatureFailure.UNTRUSTED_KEY
    # The window is checked at verification time: inside it, the same signature verifies.
    assert verify_manifest(build_manifest(old), now=now - timedelta(days=2)).key_id == "old"


def test_a_re_encoded_payload_fails(key):
    manifest = build_manifest(key)
    original = base64.b64decode(manifest["signature"]["dsse"]["payload"])
    reencoded = json.dumps(json.loads(original), indent=2).encode()  # same meaning, different bytes
    manifest["signature"]["dsse"]["payload"] = base64.b64encode(reencoded).decode()
    assert reason_of(manifest) == SignatureFailure.BAD


def test_missing_and_malformed_signatures_fail(key):
    unsigned = build_manifest(None)
    assert reason_of(unsigned) == SignatureFailure.MISSING
    manifest = build_manifest(key)
    manifest["signature"]["dsse"]["signatures"][0]["sig"] = "not base64!!"
    assert reason_of(manifest) == SignatureFailure.MALFORMED
    manifest["signature"]["dsse"]["signatures"] = []
    assert reason_of(manifest) == SignatureFailure.MISSING
    manifest["signature"]["dsse"] = "{not json"
    assert reason_of(manifest) == SignatureFailure.MALFORMED


def test_wrong_payload_type_and_identity_fail(key):
    wrong_payload_type = build_manifest(key)
    statement = statement_for(wrong_payload_type)
    wrong_payload_type["signature"]["dsse"] = key.envelope(statement, payload_type="application/json")
    assert reason_of(wrong_payload_type) == SignatureFailure.WRONG_TYPE
    wrong_predicate = build_manifest(key)
    wrong_predicate["signature"]["dsse"] = key.envelope({**statement, "predicateType": "https://slsa.dev/provenance/v1"})
    assert reason_of(wrong_predicate) == SignatureFailure.WRONG_TYPE
    wrong_statement = build_manifest(key)
    wrong_statement["signature"]["dsse"] = key.envelope({**statement, "_type": "https://example.com/Statement"})
    assert reason_of(wrong_statement) == SignatureFailure.WRONG_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    other_repo = build_manifest(key, signed_reference=f"{REGISTRY}/other")
    assert reason_of(other_repo) == SignatureFailure.IDENTITY_MISMATCH
    not_json = build_manifest(key, payload=b"not json")
    assert reason_of(not_json) == SignatureFailure.MALFORMED


def test_a_key_id_hint_that_is_not_trusted_fails(key):
    manifest = build_manifest(key)
    manifest["signature"]["key_id"] = "nobody"
    assert reason_of(manifest) == SignatureFailure.UNTRUSTED_KEY


def test_no_configured_keys_means_everything_is_refused(keys):
    signer = keys.new("k", trusted=False)
    assert reason_of(build_manifest(signer)) == SignatureFailure.UNTRUSTED_KEY


def test_broken_key_entries_are_reported_not_trusted(keys, settings, tmp_path):
    key = keys.new("good")
    (tmp_path / "rsa.pub").write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    settings.AION_COSIGN_PUBLIC_KEYS += f",bad={tmp_path}/rsa.pub,missing={tmp_path}/none.pub,noequals"
    ring = load_keyring()
    assert [k.key_id for k in ring.keys] == ["good"]
    assert len(ring.errors) == 3
    assert verify_manifest(build_manifest(key), keyring=ring).key_id == "good"


def test_vault_entries_parse_with_their_windows(key):
    pem = key.pem_path.read_text()
    entry = parse_vault_entry("v1", {"pem": pem, "not_after": "2020-01-01T00:00:00Z"}, "omertaos/cosign")
    assert entry.state() == "retired"
    assert parse_vault_entry("v2", pem, "omertaos/cosign").state() == "active"
    assert parse_vault_entry("v3", json.dumps({"pem": pem, "retired": True}), "omertaos/cosign").state() == "retired"


FAILURES = {
    "missing": lambda keys: build_manifest(None),
    "empty": lambda keys: {**build_manifest(None), "signature": {}},
    "null": lambda keys: {**build_manifest(None), "signature": None},
    "tampered digest": lambda keys: build_manifest(keys.trusted["k2026"], signed_digest=digest_of("x")),
    "foreign key": lambda keys: build_manifest(keys.new("foreign", trusted=False)),
    "retired key": lambda keys: build_manifest(keys.trusted["old"]),
    "re-encoded payload": lambda keys: _reencoded(build_manifest(keys.trusted["k2026"])),
    "legacy image-only signature": lambda keys: _legacy(build_manifest(None), keys.trusted["k2026"]),
}


def _reencoded(manifest):
    envelope = manifest["signature"]["dsse"]
    raw = base64.b64decode(envelope["payload"])
    envelope["payload"] = base64.b64encode(json.dumps(json.loads(raw), sort_keys=True, indent=1).encode()).decode()
    return manifest


def _legacy(manifest, key):
    """The old format: cosign simple signing over the image digest only (``cosign sign --output-payload``)."""
    repository, _, digest = manifest["image"].partition("@")
    document = {
        "critical": {
            "identity": {"docker-reference": repository.rsplit(":", 1)[0]},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    payload = json.dumps(document, separators=(",", ":")).encode()
    manifest["signature"] = {"payload": base64.b64encode(payload).decode(), "signature": key.sign(payload)}
    return manifest


@pytest.mark.django_db
@pytest.mark.parametrize("mode", list(FAILURES))
def test_every_failure_is_a_422_with_an_incident_and_an_audit_record_and_nothing_activated(mode, keys, admin_client):
    keys.new("k2026")
    keys.new("old", retired="")
    manifest = FAILURES[mode](keys)
    response = admin_client.post("/v1/modules", {"manifest": manifest, "activate": True}, format="json")
    assert response.status_code == 422, response.json()
    problem = response.json()
    assert problem["type"].endswith("signature-rejected")
    assert problem["incident_id"]
    incident = SecurityIncident.objects.get(pk=problem["incident_id"])
    assert incident.kind == "module_signature"
    assert incident.tenant_id == "acme"
    assert AuditRecord.objects.filter(action="module.register", result="denied").count() == 1
    assert AuditRecord.objects.filter(action="module_signature.verification_failed").count() == 1
    assert OutboxEvent.objects.filter(event_type="security.incident").count() == 1
    assert not ModuleVersion.objects.exists()
    assert not Module.objects.filter(active_version__isnull=False).exists()
    assert not OutboxEvent.objects.filter(topic="modules.releases").exists()


def test_an_image_digest_only_signature_is_refused_naming_the_new_format(key):
    manifest = _legacy(build_manifest(None), key)
    with pytest.raises(SignatureRejected) as caught:
        verify_manifest(manifest)
    assert caught.value.reason == SignatureFailure.LEGACY_FORMAT
    assert "DSSE" in caught.value.detail and PREDICATE_TYPE in caught.value.detail and "signature.dsse" in caught.value.detail
