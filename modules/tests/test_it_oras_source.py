"""The optional ORAS source: ``modules_pull`` pulls manifest.yaml + envelope.json (the DSSE envelope) with the real ``oras`` client.

The registry is a stand-in (named fake): a real local HTTP server speaking the read side of the OCI
distribution API (``GET /v2/<repo>/manifests/<tag>`` and ``/blobs/<digest>``), since no registry binary runs here.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from aion.testing.factories import TENANT
from aion.testing.module_releases import build_manifest
from aion.testing.services import service_missing
from modules.selectors import active_module_targets


class RegistryStandIn:
    def __init__(self, server):
        self.server = server
        self.manifests: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {}
        server.handler = self.reply

    @property
    def host(self):
        return f"127.0.0.1:{self.server.port}"

    def push(self, repo_tag: str, files: dict[str, bytes]) -> None:
        layers = []
        for name, data in files.items():
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            self.blobs[digest] = data
            layers.append(
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest,
                    "size": len(data),
                    "annotations": {"org.opencontainers.image.title": name},
                }
            )
        config = b"{}"
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.blobs[config_digest] = config
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
            "layers": layers,
        }
        self.manifests[repo_tag] = json.dumps(manifest).encode()

    def reply(self, request):
        path = request.path.split("?")[0]
        if path in ("/v2/", "/v2"):
            return 200, {}, {}
        if "/manifests/" in path:
            repo, tag = path[len("/v2/") :].split("/manifests/")
            body = self.manifests.get(f"{repo}:{tag}")
            if body is None:
                return 404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}, {}
            return 200, body, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if "/blobs/" in path:
            digest = path.rsplit("/", 1)[1]
            if digest not in self.blobs:
                return 404, {"errors": [{"code": "BLOB_UNKNOWN"}]}, {}
            return 200, self.blobs[digest], {"Content-Type": "application/octet-stream"}
        return 404, {}, {}


@pytest.fixture()
def registry(make_http_server, settings):
    try:
        import oras.client  # noqa: F401
    except ImportError:
        service_missing("oras", "the 'oras' package (requirements.txt) is not installed")
    stand_in = RegistryStandIn(make_http_server())
    settings.AION_ORAS_REGISTRY = stand_in.host
    settings.AION_ORAS_INSECURE = True
    return stand_in


def artifact(key, version="1.0.0"):
    manifest = build_manifest(key, version=version)
    signature = manifest.pop("signature")
    return {
        "manifest.yaml": yaml.safe_dump(manifest).encode(),
        "envelope.json": json.dumps(signature["dsse"]).encode(),  # as cosign attest-blob --output-signature writes it
    }


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_pull_registers_and_activates_a_signed_manifest(db, key, registry):
    registry.push("modules/summarizer:1.0.0", artifact(key))
    assert "registered, activated" in run("modules_pull", "modules/summarizer:1.0.0", "--activate", "--tenant", TENANT)
    assert [(t.name, t.version) for t in active_module_targets(TENANT)] == [("summarizer", "1.0.0")]


def test_a_signature_reference_is_resolved_through_the_registry(db, key, registry, admin_client):
    registry.push("modules/summarizer-sig:1.0.0", artifact(key))
    manifest = build_manifest(key)
    manifest["signature"] = {"ref": "modules/summarizer-sig:1.0.0"}
    response = admin_client.post("/v1/modules", {"manifest": manifest, "activate": True}, format="json")
    assert response.status_code == 201, response.json()


def test_unsigned_missing_and_foreign_references_fail(db, key, registry, admin_client, settings):
    files = artifact(key)
    del files["envelope.json"]
    registry.push("modules/summarizer:1.0.0", files)
    with pytest.raises(CommandError, match="missing_signature"):
        run("modules_pull", "modules/summarizer:1.0.0", "--tenant", TENANT)
    with pytest.raises(CommandError, match="failed"):
        run("modules_pull", "modules/absent:1.0.0", "--tenant", TENANT)
    manifest = build_manifest(key)
    manifest["signature"] = {"ref": "evil.example.com/x/y:1"}
    response = admin_client.post("/v1/modules", {"manifest": manifest}, format="json")
    assert response.status_code == 422 and response.json()["reason"] == "unresolved_reference"
    settings.AION_ORAS_REGISTRY = ""
    with pytest.raises(CommandError, match="AION_ORAS_REGISTRY"):
        run("modules_pull", "modules/summarizer:1.0.0", "--tenant", TENANT)
