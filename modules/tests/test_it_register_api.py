"""POST /v1/modules: register (JSON or YAML), idempotent re-registration, 409 on different content, events and audit."""

from __future__ import annotations

import yaml

from aion.models import AuditRecord, OutboxEvent
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, client_with_roles
from aion.testing.module_releases import build_manifest
from modules.models import Module, ModuleActivation, ModuleVersion
from modules.selectors import active_module_targets


def test_register_stores_an_immutable_version_without_activating(admin_client, key):
    response = admin_client.post("/v1/modules", {"manifest": build_manifest(key)}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] is True and body["activated"] is False
    assert body["version"]["signature_key_id"] == "k2026"
    assert body["version"]["node_selector"] == {"aion.io/pool": "cpu"}
    assert response["Location"] == "/v1/modules/summarizer"
    module = Module.objects.get(tenant_id=TENANT, name="summarizer")
    assert module.active_version is None
    assert active_module_targets(TENANT) == []
    events = list(OutboxEvent.objects.filter(topic="modules.releases").values_list("event_type", flat=True))
    assert events == ["modules.release.registered"]
    assert AuditRecord.objects.filter(action="module.register", result="success", tenant_id=TENANT).count() == 1


def test_register_and_activate_makes_it_a_router_target(admin_client, key):
    manifest = build_manifest(key, intents=("summarize.*", "chat.summary"))
    response = admin_client.post("/v1/modules", {"manifest": manifest, "activate": True, "reason": "first release"}, format="json")
    assert response.status_code == 201
    assert response.json()["activated"] is True
    [target] = active_module_targets(TENANT)
    assert (target.name, target.version, target.pool, target.health) == ("summarizer", "1.0.0", "cpu", "unknown")
    assert target.intents == ("summarize.*", "chat.summary")
    assert target.metadata["signature_key_id"] == "k2026"
    events = list(OutboxEvent.objects.filter(topic="modules.releases").order_by("id").values_list("event_type", flat=True))
    assert events == ["modules.release.registered", "modules.release.activated"]
    activation = ModuleActivation.objects.get()
    assert activation.reason == "first release" and activation.signature_key_id == "k2026"
    assert active_module_targets(OTHER_TENANT) == []


def test_identical_content_is_idempotent_and_different_content_is_409(admin_client, key):
    manifest = build_manifest(key)
    assert admin_client.post("/v1/modules", {"manifest": manifest}, format="json").status_code == 201
    again = admin_client.post("/v1/modules", {"manifest": dict(reversed(list(manifest.items())))}, format="json")
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert ModuleVersion.objects.count() == 1
    changed = build_manifest(key, runtime="python3.12")  # same name and version, different content (and image)
    conflict = admin_client.post("/v1/modules", {"manifest": changed}, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("version-conflict")
    assert ModuleVersion.objects.count() == 1
    # Idempotent replay with activate: true activates the stored version.
    activated = admin_client.post("/v1/modules", {"manifest": manifest, "activate": True}, format="json")
    assert activated.status_code == 200 and activated.json()["activated"] is True
    assert Module.objects.get().active_version.version == "1.0.0"


def test_the_manifest_may_be_posted_as_yaml(admin_client, key):
    text = yaml.safe_dump(build_manifest(key, version="2.0.0"))
    response = admin_client.post("/v1/modules?activate=true", data=text, content_type="application/yaml")
    assert response.status_code == 201, response.json()
    assert response.json()["activated"] is True
    bad = admin_client.post("/v1/modules", data="name: [unclosed", content_type="application/yaml")
    assert bad.status_code == 400
    assert bad["Content-Type"].startswith("application/problem+json")


def test_the_same_name_in_another_tenant_is_another_module(key, db):
    manifest = build_manifest(key)
    assert client_with_roles(["modules.admin"], TENANT).post("/v1/modules", {"manifest": manifest}, format="json").status_code == 201
    assert client_with_roles(["modules.admin"], OTHER_TENANT).post("/v1/modules", {"manifest": manifest}, format="json").status_code == 201
    assert Module.objects.count() == 2


def test_versions_are_immutable(admin_client, key):
    admin_client.post("/v1/modules", {"manifest": build_manifest(key)}, format="json")
    version = ModuleVersion.objects.get()
    version.endpoint = "http://elsewhere"
    import pytest

    from modules.models import ImmutableVersion

    with pytest.raises(ImmutableVersion):
        version.save()
    with pytest.raises(ImmutableVersion):
        version.delete()


def test_negative_authorisation(key, db):
    manifest = build_manifest(key)
    assert api_client().post("/v1/modules", {"manifest": manifest}, format="json").status_code == 401
    assert client_with_roles(["router.admin"]).post("/v1/modules", {"manifest": manifest}, format="json").status_code == 403
    assert client_with_roles(["auditor"]).post("/v1/modules", {"manifest": manifest}, format="json").status_code == 403
    assert not Module.objects.exists()


def test_a_body_without_a_manifest_is_a_400_problem(admin_client, key):
    response = admin_client.post("/v1/modules", {"activate": True}, format="json")
    assert response.status_code == 400
    assert "manifest" in response.json()["errors"]
