"""/v1/hooks/endpoints: CRUD with ETags, ping, secret rotation; personas and negative authorisation."""

from __future__ import annotations

import pytest

from aion.models import AuditRecord
from aion.testing.factories import OTHER_TENANT, api_client, client_with_roles
from hooks.crypto import decrypt
from hooks.models import WebhookEndpoint
from hooks.tests.helpers import documented_verify_signature, make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture()
def owner():
    return client_with_roles(["hooks.admin"])


def test_create_returns_the_secret_once_and_stores_it_encrypted(owner, http_server):
    response = owner.post(
        "/v1/hooks/endpoints",
        {"url": http_server.url("/r"), "event_types": ["kernel.proposal.*", "memory.upload.completed"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["enabled"] is True
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert body["secret"] not in endpoint.secret_encrypted and decrypt(endpoint.secret_encrypted) == body["secret"]
    assert "secret" not in owner.get(f"/v1/hooks/endpoints/{endpoint.pk}").json()
    assert AuditRecord.objects.filter(action="hooks.endpoint.created", resource_id=str(endpoint.pk)).exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:1/x", "event_types": []}, "event_types"),
        ({"url": "http://127.0.0.1:1/x", "event_types": ["Bad Type!"]}, "event_types"),
        ({"event_types": ["*"]}, "url"),
    ],
)
def test_invalid_endpoints_are_400_with_field_errors(owner, payload, field):
    response = owner.post("/v1/hooks/endpoints", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_private_urls_are_refused_without_the_opt_in(owner, settings):
    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    for url in ("http://127.0.0.1:8080/hook", "http://10.0.0.5/hook", "http://169.254.169.254/latest"):
        response = owner.post("/v1/hooks/endpoints", {"url": url, "event_types": ["*"]}, format="json")
        assert response.status_code == 400 and response.json()["type"].endswith("unsafe-destination"), url


def test_update_with_if_match_and_reenable(owner, http_server):
    endpoint, _ = make_endpoint(http_server.url("/r"))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="410")
    read = owner.get(f"/v1/hooks/endpoints/{endpoint.pk}")
    etag = read["ETag"]
    stale = owner.patch(f"/v1/hooks/endpoints/{endpoint.pk}", {"description": "x"}, format="json", HTTP_IF_MATCH='"stale"')
    assert stale.status_code == 412
    response = owner.patch(f"/v1/hooks/endpoints/{endpoint.pk}", {"enabled": True, "event_types": ["*"]}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    assert response.json()["enabled"] is True and response.json()["disabled_reason"] == "" and response.json()["event_types"] == ["*"]
    assert response["ETag"] != etag


def test_delete(owner, http_server):
    endpoint, _ = make_endpoint(http_server.url("/r"))
    assert owner.delete(f"/v1/hooks/endpoints/{endpoint.pk}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_ping_sends_a_signed_webhook_ping_once(owner, http_server):
    endpoint, secret = make_endpoint(http_server.url("/ping"))
    response = owner.post(f"/v1/hooks/endpoints/{endpoint.pk}/ping")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded" and body["event_type"] == "webhook.ping"
    assert body["attempt_log"][0]["status_code"] == 200
    (request,) = http_server.requests
    assert documented_verify_signature()(request.headers["x-omerta-signature"], request.body, secret)
    http_server.respond(500)
    failed = owner.post(f"/v1/hooks/endpoints/{endpoint.pk}/ping").json()
    assert failed["status"] == "failed" and failed["attempts"] == 1  # a ping is not retried


def test_rotate_secret_keeps_the_previous_for_the_grace(owner, http_server):
    endpoint, old = make_endpoint(http_server.url("/r"))
    response = owner.post(f"/v1/hooks/endpoints/{endpoint.pk}/rotate-secret", {"grace_hours": 2}, format="json")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    endpoint.refresh_from_db()
    assert decrypt(endpoint.previous_secret_encrypted) == old
    assert response.json()["previous_secret_expires_at"] is not None
    assert owner.post(f"/v1/hooks/endpoints/{endpoint.pk}/rotate-secret", {"grace_hours": -1}, format="json").status_code == 400


def test_negative_authorisation(http_server):
    theirs, _ = make_endpoint(http_server.url("/r"), tenant=OTHER_TENANT)
    assert api_client().get("/v1/hooks/endpoints").status_code == 401
    assert api_client().post("/v1/hooks/endpoints", {}, format="json").status_code == 401
    teammate = client_with_roles(["kernel.admin"])
    assert teammate.get("/v1/hooks/endpoints").status_code == 403
    assert teammate.post("/v1/hooks/endpoints", {"url": http_server.url("/"), "event_types": ["*"]}, format="json").status_code == 403
    auditor = client_with_roles(["auditor"])
    assert auditor.get("/v1/hooks/endpoints").status_code == 200
    assert auditor.post(f"/v1/hooks/endpoints/{theirs.pk}/ping").status_code == 403
    owner = client_with_roles(["hooks.admin"])
    assert owner.get(f"/v1/hooks/endpoints/{theirs.pk}").status_code == 404
    assert owner.patch(f"/v1/hooks/endpoints/{theirs.pk}", {"enabled": False}, format="json").status_code == 404
    assert owner.post(f"/v1/hooks/endpoints/{theirs.pk}/rotate-secret").status_code == 404
    assert owner.post(f"/v1/hooks/endpoints/{theirs.pk}/ping").status_code == 404
    assert owner.get("/v1/hooks/endpoints").json()["count"] == 0
    assert http_server.requests == []
