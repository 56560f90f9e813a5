"""Problem JSON for unknown routes, bad methods, oversize and malformed bodies; request ids everywhere."""

import pytest

from aion.testing.factories import api_client, make_api_key


@pytest.mark.django_db
def test_unknown_route_is_a_404_problem(client):
    response = client.get("/v1/no/such/route", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["type"] == "urn:aion:problem:not-found"
    assert body["request_id"] == response["x-request-id"]


@pytest.mark.django_db
def test_wrong_method_is_a_405_problem():
    raw, _ = make_api_key(roles=["auditor"])
    response = api_client(raw).delete("/v1/whoami")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_oversize_body_is_a_413_problem(client, settings):
    settings.AION_MAX_BODY_BYTES = 2048
    response = client.post("/v1/whoami", data=b"x" * 4096, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["type"] == "urn:aion:problem:payload-too-large"


def test_request_id_is_echoed_when_well_formed_and_replaced_otherwise(client):
    good = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.def")
    assert good["x-request-id"] == "abc-123.def"
    bad = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline<script>")
    assert bad["x-request-id"] != "bad id\nwith newline<script>"
    assert len(bad["x-request-id"]) == 32
    generated = client.get("/healthz")
    assert len(generated["x-request-id"]) == 32


def test_flatten_errors_gives_dotted_paths():
    from aion.problems import flatten_errors

    nested = {"changes": [{}, {"key": ["This field is required."]}], "non_field_errors": ["bad"], "ttl": ["too big"]}
    assert flatten_errors(nested) == {"changes.1.key": ["This field is required."], "non_field_errors": ["bad"], "ttl": ["too big"]}
