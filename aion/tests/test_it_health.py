"""/healthz, /readyz and /metrics."""

import pytest


def test_healthz_needs_no_auth_and_no_database(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_readyz_reports_every_dependency(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["service"] == "aion-control"
    expected = {"database", "cache", "broker", "event_bus", "storage", "vector_store", "log_store"}
    assert expected <= body["dependencies"].keys()
    for name in expected:
        dep = body["dependencies"][name]
        assert dep["status"] in ("ok", "degraded", "down", "disabled"), (name, dep)
        assert isinstance(dep["latency_ms"], float)
    assert body["dependencies"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_readyz_answers_503_when_a_configured_dependency_is_down(client, settings):
    from aion.testing.services import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens here
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["dependencies"]["cache"]["status"] == "down"


@pytest.mark.django_db
def test_readyz_reports_embedded_defaults_as_disabled(client, settings):
    settings.REDIS_URL = ""
    settings.QDRANT_URL = ""
    settings.MONGO_URL = ""
    deps = client.get("/readyz").json()["dependencies"]
    assert deps["cache"]["status"] == "disabled" and deps["cache"]["engine"] == "in-process"
    assert deps["vector_store"]["status"] == "disabled"
    assert deps["log_store"]["status"] == "disabled"


@pytest.mark.django_db
def test_metrics_exports_request_counts_and_latency_by_route_and_status(client):
    client.get("/healthz")
    client.get("/v1/does-not-exist")
    text = client.get("/metrics").content.decode()
    assert 'aion_http_requests_total{method="GET",route="healthz",status="200"}' in text
    assert 'aion_http_request_duration_seconds_bucket{le="0.005",method="GET",route="healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text


def test_schema_and_docs_are_served(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    assert b"cdn" not in docs.content.lower()
