"""Standard Webhooks signing of outbound deliveries (webhook-id / -timestamp / -signature, whsec_ secrets).

Every check is a real delivery to a real threaded HTTP receiver on 127.0.0.1 (``http_server``), verified
with the ``standardwebhooks`` library and the ``secret_whsec`` the API or Console handed out.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from aion.auth.principal import system_principal
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, client_with_roles, make_user
from aion.testing.http import LocalHTTPServer, RecordedRequest
from hooks import signing
from hooks.models import WebhookDelivery, WebhookEndpoint
from hooks.services import deliver, send_test_ping
from hooks.tests.helpers import DOC, doc_block, documented_verify_signature, make_endpoint, publish_event

pytestmark = pytest.mark.django_db


@pytest.fixture()
def owner() -> Any:
    return client_with_roles(["hooks.admin"])


def documented_verify_standard_webhook() -> Callable[..., Any]:
    """``verify_standard_webhook`` exactly as docs/webhooks.md shows it to receivers."""
    namespace: dict[str, Any] = {}
    exec(compile(doc_block("standardwebhooks-verify", "python"), str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verify_standard_webhook"]  # type: ignore[no-any-return]


def create_via_api(owner: Any, server: LocalHTTPServer) -> dict[str, Any]:
    response = owner.post("/v1/hooks/endpoints", {"url": server.url("/hook"), "event_types": ["kernel.proposal.*"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def deliver_next_event(server: LocalHTTPServer) -> tuple[WebhookDelivery, RecordedRequest]:
    """Publish one event and send its delivery now; the request the receiver got."""
    seen = len(server.requests)
    publish_event()
    delivery = deliver(WebhookDelivery.objects.latest("pk").pk)
    assert delivery is not None and delivery.status == "succeeded", delivery
    assert len(server.requests) == seen + 1
    return delivery, server.requests[-1]


def signature_entries(request: RecordedRequest) -> list[str]:
    return request.headers["webhook-signature"].split(" ")


def test_a_real_delivery_verifies_with_standardwebhooks_and_the_whsec_the_api_returned(owner, http_server):
    created = create_via_api(owner, http_server)
    secret, secret_whsec = created["secret"], created["secret_whsec"]
    # whsec_ + base64 of exactly the HMAC key bytes (the raw secret's UTF-8)
    assert secret_whsec == "whsec_" + base64.b64encode(secret.encode()).decode()
    assert base64.b64decode(secret_whsec.removeprefix("whsec_")) == secret.encode()

    delivery, request = deliver_next_event(http_server)
    payload = Webhook(secret_whsec).verify(request.body, request.headers)
    assert payload == delivery.payload == json.loads(request.body)
    assert documented_verify_standard_webhook()(request.body, request.headers, secret_whsec) == delivery.payload
    # one id and one second for both schemes; the id is the delivery id receivers dedupe on
    assert request.headers["webhook-id"] == request.headers["x-omerta-delivery"] == str(delivery.delivery_id)
    timestamp, _ = signing.parse_header(request.headers["x-omerta-signature"])
    assert request.headers["webhook-timestamp"] == str(timestamp)
    assert len(signature_entries(request)) == 1 and signature_entries(request)[0].startswith("v1,")
    # ... and the runbook's x-omerta-signature still verifies with the raw secret
    assert documented_verify_signature()(request.headers["x-omerta-signature"], request.body, secret)
    assert signing.verify(request.headers["x-omerta-signature"], request.body, [secret]) == 0
    # the raw secret is not the Standard Webhooks form (docs/webhooks.md says so): a library given it fails
    with pytest.raises((WebhookVerificationError, ValueError)):
        Webhook(secret).verify(request.body, request.headers)


def test_a_tampered_delivery_fails_standardwebhooks_verification(owner, http_server):
    created = create_via_api(owner, http_server)
    _delivery, request = deliver_next_event(http_server)
    hook = Webhook(created["secret_whsec"])
    tampered_payload = json.dumps({**json.loads(request.body), "tenant_id": OTHER_TENANT}, separators=(",", ":"), sort_keys=True)
    for body, headers in [
        (request.body + b" ", request.headers),
        (tampered_payload.encode(), request.headers),
        (request.body, {**request.headers, "webhook-id": "another-delivery"}),
        (request.body, {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 1)}),
    ]:
        with pytest.raises(WebhookVerificationError):
            hook.verify(body, headers)
        assert documented_verify_standard_webhook()(body, headers, created["secret_whsec"]) is None
    missing = {k: v for k, v in request.headers.items() if k != "webhook-signature"}
    with pytest.raises(WebhookVerificationError):
        hook.verify(request.body, missing)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.standard_webhooks_secret("whsec_wrong")).verify(request.body, request.headers)
    hook.verify(request.body, request.headers)  # the untouched delivery still verifies


def test_during_a_rotation_both_secrets_verify_both_schemes_then_only_the_new(owner, http_server):
    created = create_via_api(owner, http_server)
    rotated = owner.post(f"/v1/hooks/endpoints/{created['id']}/rotate-secret", {"grace_hours": 2}, format="json")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()
    assert new["secret_whsec"] == signing.standard_webhooks_secret(new["secret"]) != created["secret_whsec"]

    _delivery, request = deliver_next_event(http_server)
    entries = signature_entries(request)
    assert len(entries) == 2  # one v1, entry per active secret, the new one first
    msg_id, t = request.headers["webhook-id"], int(request.headers["webhook-timestamp"])
    assert entries == [f"v1,{signing.compute_standard_signature(s, msg_id, t, request.body)}" for s in (new["secret"], created["secret"])]
    for whsec in (new["secret_whsec"], created["secret_whsec"]):
        assert Webhook(whsec).verify(request.body, request.headers) == json.loads(request.body)
    verify_omerta = documented_verify_signature()
    for secret in (new["secret"], created["secret"]):
        assert verify_omerta(request.headers["x-omerta-signature"], request.body, secret)

    # once the grace is over, only the new secret signs
    WebhookEndpoint.objects.filter(pk=created["id"]).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    _delivery, request = deliver_next_event(http_server)
    assert len(signature_entries(request)) == 1
    Webhook(new["secret_whsec"]).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret_whsec"]).verify(request.body, request.headers)
    assert not verify_omerta(request.headers["x-omerta-signature"], request.body, created["secret"])


def console_login(username: str, roles: list[str], tenant: str = TENANT) -> Client:
    make_user(username, roles=roles, tenant=tenant)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


def shown_whsec(html: str) -> str:
    match = re.search(r'id="new-secret-whsec">(whsec_[A-Za-z0-9+/=]+)<', html)
    assert match, "the page shows no Standard Webhooks secret"
    return match.group(1)


def test_the_console_shows_the_whsec_form_on_create_and_rotate_and_it_verifies_a_ping(http_server):
    console = console_login("olivia", ["hooks.admin"])
    created = console.post("/console/webhooks/", {"url": http_server.url("/console"), "event_types": "kernel.proposal.*"})
    endpoint = WebhookEndpoint.objects.get()
    whsec = shown_whsec(created.content.decode())
    send_test_ping(endpoint, actor=system_principal(TENANT))
    (request,) = http_server.requests
    assert Webhook(whsec).verify(request.body, request.headers)["type"] == "webhook.ping"

    rotated = console.post(f"/console/webhooks/endpoints/{endpoint.pk}/rotate")
    new_whsec = shown_whsec(rotated.content.decode())
    assert new_whsec != whsec
    send_test_ping(endpoint, actor=system_principal(TENANT))
    for key in (new_whsec, whsec):  # the previous one still verifies during the grace
        Webhook(key).verify(http_server.requests[-1].body, http_server.requests[-1].headers)
    # hook-source secrets are not endpoint secrets: their page shows no whsec form
    source_page = console.post("/console/webhooks/sources/", {"name": "bot", "scopes": ["kernel.approve"]})
    assert 'id="new-secret">hksec_' in source_page.content.decode() and "new-secret-whsec" not in source_page.content.decode()


def test_negative_authorisation_nobody_else_gets_the_secret(http_server):
    """Create and rotate-secret answer the secret: outsiders, the anonymous and other roles never see it."""
    ours, _ = make_endpoint(http_server.url("/ours"))
    fingerprint = ours.secret_fingerprint
    create = {"url": http_server.url("/x"), "event_types": ["*"]}
    callers = {
        "anonymous": (api_client(), 401, 401),
        "kernel.admin": (client_with_roles(["kernel.admin"]), 403, 403),
        "auditor": (client_with_roles(["auditor"]), 403, 403),
        "outsider hooks.admin": (client_with_roles(["hooks.admin"], tenant=OTHER_TENANT), 201, 404),
    }
    for name, (client, create_status, rotate_status) in callers.items():
        rotated = client.post(f"/v1/hooks/endpoints/{ours.pk}/rotate-secret", {"grace_hours": 1}, format="json")
        assert rotated.status_code == rotate_status, name
        assert b"whsec_" not in rotated.content and b"secret_whsec" not in rotated.content, name
        made = client.post("/v1/hooks/endpoints", create, format="json")
        assert made.status_code == create_status, name
        if create_status != 201:
            assert b"whsec_" not in made.content, name
    ours.refresh_from_db()
    assert ours.secret_fingerprint == fingerprint and ours.previous_secret_encrypted == ""
    # the outsider's own endpoint lives in its tenant; reads never carry a secret
    owner = client_with_roles(["hooks.admin"])
    detail = owner.get(f"/v1/hooks/endpoints/{ours.pk}")
    assert detail.status_code == 200 and b"whsec_" not in detail.content
    assert b"whsec_" not in owner.get("/v1/hooks/endpoints").content
    # the Console: another tenant's admin gets 404, a teammate without the role 403, and no secret
    outsider = console_login("oscar", ["hooks.admin"], tenant=OTHER_TENANT)
    page = outsider.post(f"/console/webhooks/endpoints/{ours.pk}/rotate")
    assert page.status_code == 404 and b"whsec_" not in page.content
    teammate = console_login("tom", ["kernel.admin"])
    page = teammate.post(f"/console/webhooks/endpoints/{ours.pk}/rotate")
    assert page.status_code == 403 and b"whsec_" not in page.content
    ours.refresh_from_db()
    assert ours.secret_fingerprint == fingerprint
    assert http_server.requests == []


def test_the_openapi_schema_declares_secret_whsec_on_create_and_rotate(client):
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    spec = json.loads(schema.content)
    component = spec["components"]["schemas"]["WebhookEndpointSecret"]
    assert {"secret", "secret_whsec"} <= set(component["properties"]) and "secret_whsec" in component.get("required", [])
    assert "secret_whsec" not in spec["components"]["schemas"]["WebhookEndpoint"]["properties"]
    ref = "#/components/schemas/WebhookEndpointSecret"
    paths = spec["paths"]
    create = paths["/v1/hooks/endpoints"]["post"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"] == ref
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/WebhookEndpoint"
    rotate = paths["/v1/hooks/endpoints/{id}/rotate-secret"]["post"]
    assert rotate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == ref
    assert rotate["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/RotateSecret"
