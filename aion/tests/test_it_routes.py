"""Every route declares its role; nothing is open by accident; garbage never gets a 500 or HTML."""

from __future__ import annotations

import pytest

from aion.rbac import ALL_ROLES, PUBLIC
from aion.testing.factories import api_client, make_api_key
from aion.testing.routes import iter_routes


def call(client, method, path, body=b"{}"):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, data=body, content_type="application/json")


# Routes authenticated by an HMAC signature instead of a credential (hooks/tests cover them).
HOOK_SIGNATURE = "hook-signature"
PUBLIC_ALLOWED = {"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/api/schema/", "/api/docs/", "/"}


def api_routes():
    return [r for r in iter_routes() if r.pattern.startswith("v1/") and "format" not in r.pattern]


def console_routes():
    return [r for r in iter_routes() if r.pattern.startswith("console/")]


def test_every_api_and_console_route_declares_a_role():
    undeclared = [r.pattern for r in api_routes() + console_routes() if not r.declared_roles()]
    assert undeclared == [], f"routes without required_role: {undeclared}"


def test_only_health_metrics_schema_and_jwks_are_public():
    public = {r.path for r in iter_routes() if PUBLIC in r.declared_roles() and not r.pattern.startswith("console/")}
    assert public <= PUBLIC_ALLOWED, f"unexpectedly public: {public - PUBLIC_ALLOWED}"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_unauthenticated_api_calls_get_401_problems(method):
    client = api_client()
    for route in api_routes():
        if route.declared_roles() in ({PUBLIC}, {HOOK_SIGNATURE}):
            continue
        response = call(client, method, route.path)
        assert response.status_code in (401, 404, 405), f"{method.upper()} {route.path} -> {response.status_code}"
        assert response["Content-Type"].startswith("application/problem+json"), route.path
        if response.status_code == 401:
            assert response.json()["status"] == 401


@pytest.mark.django_db
def test_a_credential_without_the_role_gets_403():
    raw, _ = make_api_key(roles=[])  # authenticated, no roles at all
    client = api_client(raw)
    for route in api_routes():
        roles = route.declared_roles()
        if roles & {PUBLIC, "authenticated", HOOK_SIGNATURE}:
            continue
        for method in ("get", "post"):
            response = call(client, method, route.path)
            assert response.status_code in (403, 404, 405), f"{method.upper()} {route.path} -> {response.status_code}"
            assert response["Content-Type"].startswith("application/problem+json")


@pytest.mark.django_db
def test_every_other_role_is_not_enough_to_write():
    """Holding every role except the ones a route declares (and auditor, which may read anything) gets 403 on writes."""
    refused = 0
    for route in api_routes():
        declared = route.declared_roles()
        if declared & {PUBLIC, "authenticated", HOOK_SIGNATURE}:
            continue
        raw, _ = make_api_key(roles=sorted(ALL_ROLES - declared - {"auditor"}))
        client = api_client(raw)
        for method in ("post", "put", "patch", "delete"):
            response = call(client, method, route.path)
            assert response.status_code in (403, 404, 405), f"{method.upper()} {route.path} -> {response.status_code}"
            assert response["Content-Type"].startswith("application/problem+json")
            refused += response.status_code == 403
    # The method check comes first (405 with Allow), so only the writes a route serves reach the role check: the
    # walk must still have reached it on most of them, not stopped at 404/405.
    assert refused >= 20


GARBAGE = [
    b"{not json",
    b"[]",
    b'{"a": [1, {"b": null}], "id": "../../etc/passwd"}',
    b"\xff\xfe\x00garbage",
    b'"just a string"',
    b'{"data": 12, "upload_id": {"x": 1}, "chunk_index": -5, "changes": "x", "manifest": 3}',
]


@pytest.mark.django_db
def test_garbage_to_every_route_gets_a_4xx_problem_never_a_500():
    raw, _ = make_api_key(roles=sorted(ALL_ROLES))
    client = api_client(raw)
    for route in api_routes():
        for method in ("post", "put", "patch", "delete", "get"):
            for body in GARBAGE:
                response = call(client, method, route.path, body)
                assert response.status_code < 500, f"{method.upper()} {route.path} {body!r} -> {response.status_code}"
                if response.status_code >= 400:
                    assert response["Content-Type"].startswith("application/problem+json"), f"{method} {route.path}"
                    problem = response.json()
                    assert {"type", "title", "status", "detail"} <= problem.keys()
