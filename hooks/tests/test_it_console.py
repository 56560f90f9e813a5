"""Console pages: endpoints with the 24 h failure chart, deliveries with Redeliver/Recover, sources, incidents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from aion.models import SecurityIncident
from aion.testing.factories import OTHER_TENANT, TENANT, make_user
from hooks.choices import DeliveryStatus
from hooks.models import DeliveryAttempt, HookSource, WebhookDelivery, WebhookEndpoint
from hooks.services import deliver
from hooks.tests.helpers import make_endpoint, publish_event

pytestmark = pytest.mark.django_db


def login(username: str, roles: list[str], tenant: str = TENANT) -> Client:
    make_user(username, roles=roles, tenant=tenant)
    client = Client()
    client.login(username=username, password="pw-for-tests-only")
    return client


@pytest.fixture()
def owner() -> Client:
    return login("olivia", ["hooks.admin"])


def failed_delivery(url: str) -> WebhookDelivery:
    make_endpoint(url)
    publish_event()
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    return delivery


def test_the_endpoints_page_lists_endpoints_and_charts_24h_failures(owner, http_server):
    http_server.default = (500, {}, {})
    endpoint, _ = make_endpoint(http_server.url("/x"))
    publish_event()
    deliver(WebhookDelivery.objects.get().pk)
    page = owner.get("/console/webhooks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-endpoint="{endpoint.pk}"' in html and endpoint.url in html
    assert '<svg id="failure-chart"' in html and 'id="failure-total">1<' in html
    assert html.count('class="bar"') == 24
    assert 'data-count="1"' in html
    assert "cdn" not in html.lower()


def test_creating_an_endpoint_shows_the_secret_once(owner, http_server):
    response = owner.post("/console/webhooks/", {"url": http_server.url("/new"), "event_types": "memory.*, kernel.proposal.applied"})
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["kernel.proposal.applied", "memory.*"]
    html = response.content.decode()
    assert 'id="new-secret">whsec_' in html
    assert "whsec_" not in owner.get("/console/webhooks/").content.decode()


def test_rotating_an_endpoint_secret_and_toggling_it(owner, http_server):
    endpoint, _ = make_endpoint(http_server.url("/x"))
    response = owner.post(f"/console/webhooks/endpoints/{endpoint.pk}/rotate")
    assert 'id="new-secret">whsec_' in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.previous_secret_expires_at is not None
    owner.post(f"/console/webhooks/endpoints/{endpoint.pk}/disable")
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    owner.post(f"/console/webhooks/endpoints/{endpoint.pk}/enable")
    endpoint.refresh_from_db()
    assert endpoint.enabled is True and endpoint.disabled_reason == ""


def test_ping_from_the_console_reaches_the_receiver(owner, http_server):
    endpoint, _ = make_endpoint(http_server.url("/ping"))
    response = owner.post(f"/console/webhooks/endpoints/{endpoint.pk}/ping", follow=True)
    assert "Ping: HTTP 200" in response.content.decode()
    assert http_server.requests[0].headers["x-omerta-event"] == "webhook.ping"


def test_the_deliveries_table_shows_status_and_attempts_and_redeliver_works(owner, http_server):
    http_server.respond(500, {"why": "db down"})
    make_endpoint(http_server.url("/x"))
    publish_event()
    delivery = deliver(WebhookDelivery.objects.get().pk)
    html = owner.get("/console/webhooks/deliveries/").content.decode()
    assert f'data-delivery="{delivery.delivery_id}"' in html
    assert '<span class="badge retrying">retrying</span>' in html
    assert "db down" in html  # the attempt's response excerpt
    assert "Redeliver" in html and 'id="recover-form"' in html
    owner.post(f"/console/webhooks/deliveries/{delivery.pk}/redeliver")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    filtered = owner.get("/console/webhooks/deliveries/?status=failed").content.decode()
    assert f'data-delivery="{delivery.delivery_id}"' not in filtered


def test_recover_from_the_console(owner, http_server):
    delivery = failed_delivery(http_server.url("/x"))
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = owner.post("/console/webhooks/deliveries/recover", {"since": since}, follow=True)
    assert "Recovered 1 failed deliveries." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


def test_sources_page_adds_and_rotates_with_the_secret_shown_once(owner):
    response = owner.post("/console/webhooks/sources/", {"name": "pager", "scopes": ["kernel.approve"]})
    assert 'id="new-secret">hksec_' in response.content.decode()
    source = HookSource.objects.get(name="pager")
    assert source.tenant_id == TENANT and source.scopes == ["kernel.approve"]
    response = owner.post(f"/console/webhooks/sources/{source.pk}/rotate")
    assert 'id="new-secret">hksec_' in response.content.decode()
    assert source.secrets.count() == 2
    listing = owner.get("/console/webhooks/sources/").content.decode()
    assert 'data-source="pager"' in listing and "hksec_" not in listing


def test_incidents_list_and_acknowledge(owner):
    """The Webhooks tab's Incidents is the Console's security incidents page filtered to hook signatures."""
    from aion.incidents import record_incident

    incident = record_incident("hook_signature", "bad_signature", tenant_id=TENANT, source_ip="203.0.113.1", body=b"{}")
    record_incident("hook_signature", "bad_signature", tenant_id=OTHER_TENANT, source_ip="203.0.113.2", body=b"{}")
    tab = owner.get("/console/webhooks/incidents/")
    assert tab.status_code == 302 and tab["Location"] == "/console/security/incidents/?kind=hook_signature"
    html = owner.get(tab["Location"]).content.decode()
    assert f'data-incident="{incident.pk}"' in html and "203.0.113.2" not in html
    owner.post(f"/console/security/incidents/{incident.pk}/acknowledge", {"note": "rotated the CI secret"})
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None and incident.state == "acknowledged" and incident.note == "rotated the CI secret"
    # the dashboard badge counts unacknowledged incidents only
    assert 'id="incident-badge"' not in owner.get("/console/").content.decode()


def test_negative_authorisation(http_server):
    endpoint, _ = make_endpoint(http_server.url("/x"), tenant=OTHER_TENANT)
    anonymous = Client().get("/console/webhooks/")
    assert anonymous.status_code == 302 and "/console/login/" in anonymous["Location"]
    teammate = login("tom", ["memory.reader"])
    assert teammate.get("/console/webhooks/").status_code == 403
    auditor = login("audrey", ["auditor"])
    assert auditor.get("/console/webhooks/deliveries/").status_code == 200
    assert auditor.post("/console/webhooks/", {"url": "http://127.0.0.1/", "event_types": "*"}).status_code == 403
    outsider = login("oscar", ["hooks.admin"])  # acme admin, the endpoint is globex's
    assert outsider.post(f"/console/webhooks/endpoints/{endpoint.pk}/disable").status_code == 404
    assert outsider.get("/console/webhooks/").content.decode().count("data-endpoint=") == 0
    assert DeliveryAttempt.objects.count() == 0
    assert SecurityIncident.objects.count() == 0
