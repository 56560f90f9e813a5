"""POST /v1/modules/{name}/activate and /rollback: previous or named version, signature re-verified first."""

from __future__ import annotations

from aion.models import AuditRecord, OutboxEvent, SecurityIncident
from aion.testing.factories import OTHER_TENANT, api_client, client_with_roles
from aion.testing.module_releases import register
from modules.models import Module, ModuleActivation


def active(name="summarizer"):
    return Module.objects.select_related("active_version").get(name=name).active_version.version


def test_rollback_without_a_target_goes_to_the_previous_active_version(admin_client, key):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        register(key, version)
    response = admin_client.post("/v1/modules/summarizer/rollback", {"reason": "1.2.0 leaks memory"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["activation"]["from_version"] == "1.2.0"
    assert active() == "1.1.0"
    # Again: not back to the version we rolled away from, but further back.
    assert admin_client.post("/v1/modules/summarizer/rollback", {"reason": "1.1.0 too"}, format="json").status_code == 200
    assert active() == "1.0.0"
    assert admin_client.post("/v1/modules/summarizer/rollback", {}, format="json").status_code == 409
    event = OutboxEvent.objects.filter(event_type="modules.release.rolled_back").order_by("id").first()
    assert event.envelope["data"]["version"] == "1.1.0"
    assert event.envelope["data"]["previous_version"] == "1.2.0"
    assert AuditRecord.objects.filter(action="module.rollback").count() == 2


def test_rollback_to_a_named_version(admin_client, key):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        register(key, version)
    response = admin_client.post("/v1/modules/summarizer/rollback", {"version": "1.0.0", "reason": "known good"}, format="json")
    assert response.status_code == 200
    assert active() == "1.0.0"
    assert ModuleActivation.objects.filter(action="rollback").get().reason == "known good"
    assert admin_client.post("/v1/modules/summarizer/rollback", {"version": "9.9.9"}, format="json").status_code == 404
    assert admin_client.post("/v1/modules/summarizer/rollback", {"version": "1.0.0"}, format="json").status_code == 409


def test_rollback_to_a_version_signed_by_a_retired_key_is_refused(admin_client, keys):
    old = keys.new("k2025")
    register(old, "1.0.0")
    new = keys.new("k2026")
    register(new, "2.0.0")
    keys.retire("k2025")  # rotation: the old key is retired
    response = admin_client.post("/v1/modules/summarizer/rollback", {"reason": "try old"}, format="json")
    assert response.status_code == 422
    assert response.json()["reason"] == "retired_key"
    assert active() == "2.0.0"
    incident = SecurityIncident.objects.get(kind="module_signature")
    assert incident.reason == "retired_key"
    assert incident.details["action"] == "rollback"
    assert AuditRecord.objects.filter(action="module.rollback", result="denied").count() == 1
    assert not OutboxEvent.objects.filter(event_type="modules.release.rolled_back").exists()


def test_activate_a_registered_version(admin_client, key):
    register(key, "1.0.0")
    register(key, "2.0.0", activate=False)
    response = admin_client.post("/v1/modules/summarizer/activate", {"version": "2.0.0", "reason": "go"}, format="json")
    assert response.status_code == 200 and response.json()["changed"] is True
    assert active() == "2.0.0"
    again = admin_client.post("/v1/modules/summarizer/activate", {"version": "2.0.0"}, format="json")
    assert again.json()["changed"] is False
    assert admin_client.post("/v1/modules/summarizer/activate", {"version": "3.0.0"}, format="json").status_code == 404
    assert admin_client.post("/v1/modules/summarizer/activate", {}, format="json").status_code == 400
    # Rolling back after an activate goes to the version active before it.
    assert admin_client.post("/v1/modules/summarizer/rollback", {}, format="json").status_code == 200
    assert active() == "1.0.0"


def test_stale_if_match_is_412(admin_client, key):
    register(key, "1.0.0")
    register(key, "2.0.0")
    etag = admin_client.get("/v1/modules/summarizer")["ETag"]
    admin_client.post("/v1/modules/summarizer/rollback", {}, format="json")
    stale = admin_client.post("/v1/modules/summarizer/activate", {"version": "2.0.0"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412


def test_negative_authorisation(key, db):
    register(key, "1.0.0", tenant=OTHER_TENANT)
    register(key, "2.0.0", tenant=OTHER_TENANT)
    for path, body in (("/v1/modules/summarizer/rollback", {}), ("/v1/modules/summarizer/activate", {"version": "1.0.0"})):
        assert api_client().post(path, body, format="json").status_code == 401
        assert client_with_roles(["auditor"], OTHER_TENANT).post(path, body, format="json").status_code == 403
        assert client_with_roles(["modules.admin"]).post(path, body, format="json").status_code == 404
    assert active() == "2.0.0"
