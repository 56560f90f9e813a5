"""/metrics behind the bearer token AION_METRICS_TOKEN; /readyz public with a status per dependency, details with the token.

/healthz stays public and does no I/O. With no token configured (allowed outside AION_ENV=prod only) both
stay open for local development.
"""

from __future__ import annotations

import pytest
import yaml
from django.test import Client

from aion.testing.processes import ROOT

TOKEN = "metrics-token-for-tests-0123456789abcdef"


@pytest.fixture()
def metrics_token(settings):
    settings.AION_METRICS_TOKEN = TOKEN
    return TOKEN


def _bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{}, _bearer("wrong-token"), _bearer(TOKEN + "x"), {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}, {"HTTP_AUTHORIZATION": TOKEN}],
)
def test_metrics_without_the_token_is_a_401_problem(metrics_token, headers):
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["status"] == 401 and problem["type"] == "urn:aion:problem:unauthenticated"
    assert b"aion_http_requests_total" not in response.content


@pytest.mark.django_db
def test_metrics_with_the_token_are_served(metrics_token):
    response = Client().get("/metrics", **_bearer(TOKEN))
    assert response.status_code == 200
    assert b"aion_http_requests_total" in response.content
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"bearer  {TOKEN}").status_code == 200  # scheme is case-insensitive


@pytest.mark.django_db
def test_metrics_are_open_when_no_token_is_configured(settings):
    settings.AION_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 200


@pytest.mark.django_db
def test_public_readyz_gives_only_a_status_per_dependency(metrics_token, settings):
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "service", "dependencies"}
    assert body["dependencies"]["database"] == {"status": "ok"}
    for name, dependency in body["dependencies"].items():
        assert set(dependency) == {"status"}, name
    text = response.content.decode()
    for secret in (str(settings.VAR_DIR), str(settings.MEDIA_ROOT), "engine", "latency_ms", "127.0.0.1", "6379", "5432"):
        assert secret not in text


@pytest.mark.django_db
def test_readyz_details_need_the_token(metrics_token):
    assert "engine" not in Client().get("/readyz", **_bearer("wrong")).json()["dependencies"]["database"]
    detailed = Client().get("/readyz", **_bearer(TOKEN)).json()
    assert detailed["dependencies"]["database"]["engine"]
    assert isinstance(detailed["dependencies"]["database"]["latency_ms"], float)


@pytest.mark.django_db
def test_public_readyz_still_answers_503_naming_the_down_dependency(metrics_token, settings):
    from aion.testing.services import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens here
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["dependencies"]["cache"] == {"status": "down"}
    assert "redis://" not in response.content.decode()


def test_healthz_stays_public_and_does_no_io(metrics_token):
    # No django_db mark: any database access would raise.
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_the_scrape_config_and_the_web_pod_carry_the_token():
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/scrape.yaml").read_text())
    job = next(job for job in scrape["scrape_configs"] if job["job_name"] == "aion")
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]
    web = next(d for d in yaml.safe_load_all((ROOT / "deploy/k8s/web.yaml").read_text()) if d and d["kind"] == "Deployment")
    container = web["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container.get("env", [])}
    assert env["AION_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
