"""Every error has a body of its kind: problem JSON on API, schema, docs and platform routes; an HTML page on the Console."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from aion.problems import PROBLEM_CONTENT_TYPE
from aion.roles import Role
from aion.testing.factories import make_user

pytestmark = pytest.mark.django_db


def _assert_problem(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE), response["Content-Type"]
    body = response.json()
    assert body["status"] == status and {"type", "title", "detail"} <= body.keys()
    return body


def test_an_unknown_schema_format_is_a_json_problem_not_yaml():
    _assert_problem(Client().get("/api/schema/", {"format": "xx"}), 404)


def test_the_docs_page_answers_406_as_a_json_problem():
    _assert_problem(Client().get("/api/docs/", HTTP_ACCEPT="application/json"), 406)


def test_the_docs_and_schema_answer_429_as_json_problems(gateway_isolation):
    limits = {"default": "1/60", "write": "1/60", "ingest": "1/60", "hooks": "1/60", "hook_failures": "1/60", "auth_failures": "1/60"}
    with override_settings(AION_RATE_LIMITS=limits):
        for path in ("/api/docs/", "/api/schema/"):
            client = Client(REMOTE_ADDR=f"198.51.100.{len(path)}")
            assert client.get(path).status_code == 200
            _assert_problem(client.get(path), 429)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"])
@pytest.mark.parametrize("method", ["TRACE", "QUERY", "POST", "DELETE"])
def test_platform_routes_answer_other_methods_with_a_405_problem_and_allow(method, path):
    body = _assert_problem(Client().generic(method, path), 405)
    response = Client().generic(method, path)
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    assert method in body["detail"]


def test_a_post_only_console_page_answers_get_with_an_html_405_page():
    make_user("jobs-admin", roles=[Role.KERNEL_ADMIN])
    client = Client()
    client.login(username="jobs-admin", password="pw-for-tests-only")
    response = client.get("/console/jobs/kernel_expire/run/")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("text/html")
    assert response["Allow"] == "POST"
    html = response.content.decode()
    assert "405" in html and "Method Not Allowed" in html and 'href="/console/"' in html
