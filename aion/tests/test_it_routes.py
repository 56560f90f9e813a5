"""Every route declares its role; nothing is open by accident; garbage never gets a 500 or HTML."""

from __future__ import annotations

import pytest
from django.urls import resolve

from aion.api.incidents import ACKNOWLEDGE_ROLES, IncidentPermission
from aion.roles import ALL_ROLES, PUBLIC
from aion.testing.factories import api_client, make_api_key
from aion.testing.routes import iter_routes


def call(client, method, path, body=b"{}"):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, data=body, content_type="application/json")


# Routes authenticated by an HMAC signature instead of a credential (hooks/tests cover them).
HOOK_SIGNATURE = "hook-signature"
WALK_METHODS = ("get", "post", "put", "patch", "delete")
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


def test_every_sample_path_resolves_to_its_own_route():
    """A sample the URL resolver does not match is a 404 before the view runs: the walks below would test nothing there."""
    for route in api_routes():
        match = resolve(route.path)
        assert match.func is route.callback, f"{route.pattern}: {route.path} resolves to {match.route}"
        assert route.served_methods(), f"{route.pattern} serves no method"


def refusal_walk(client, expected, *, methods=WALK_METHODS, skip=frozenset({PUBLIC, HOOK_SIGNATURE})):
    """Every (route, method): a method the route serves must get EXPECTED; one it does not serve a 405 (the method
    check comes first) — or EXPECTED, for views that authenticate before the method check. Never a 404 or success.
    Returns (how many answered EXPECTED, how many served (route, method) pairs were walked)."""
    answered = served = 0
    for route in api_routes():
        if route.declared_roles() & skip:
            continue
        for method in methods:
            response = call(client, method, route.path)
            label = f"{method.upper()} {route.path} -> {response.status_code}"
            assert response["Content-Type"].startswith("application/problem+json"), label
            assert response.json()["status"] == response.status_code, label
            if method in route.served_methods():
                served += 1
                assert response.status_code == expected, label
            else:
                assert response.status_code in (405, expected), label
            answered += response.status_code == expected
    return answered, served


@pytest.mark.django_db
def test_unauthenticated_api_calls_get_401_problems():
    answered, served = refusal_walk(api_client(), 401)
    # The guard: every served method of every non-public route refused with 401 (none slipped through as 404/405).
    walked = [r for r in api_routes() if not r.declared_roles() & {PUBLIC, HOOK_SIGNATURE}]
    assert served >= len(walked) > 40
    assert answered >= served


@pytest.mark.django_db
def test_a_credential_without_the_role_gets_403():
    raw, _ = make_api_key(roles=[])  # authenticated, no roles at all
    answered, served = refusal_walk(api_client(raw), 403, skip=frozenset({PUBLIC, "authenticated", HOOK_SIGNATURE}))
    assert served > 40 and answered >= served


@pytest.mark.django_db
def test_every_other_role_is_not_enough_to_write():
    """Holding every role except the ones a route declares (and auditor, which may read anything) gets 403 on writes."""
    answered = served = 0
    for route in api_routes():
        declared = route.declared_roles()
        if declared & {PUBLIC, "authenticated", HOOK_SIGNATURE}:
            continue
        if IncidentPermission in getattr(route.view_class, "permission_classes", ()):
            declared |= ACKNOWLEDGE_ROLES  # hooks.admin acknowledges incidents too (aion/api/incidents.py)
        raw, _ = make_api_key(roles=sorted(ALL_ROLES - declared - {"auditor"}))
        for method in ("post", "put", "patch", "delete"):
            response = call(api_client(raw), method, route.path)
            label = f"{method.upper()} {route.path} -> {response.status_code}"
            assert response["Content-Type"].startswith("application/problem+json"), label
            # The method check comes first (405 with Allow), so only the writes a route serves reach the role check.
            if method in route.served_methods():
                served += 1
                assert response.status_code == 403, label
            else:
                assert response.status_code == 405, label
            answered += response.status_code == 403
    assert served >= 20 and answered == served


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
