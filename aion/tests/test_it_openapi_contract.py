"""The OpenAPI document is the contract: valid, with security, role, body and error responses on every operation."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from aion.roles import PUBLIC

WRITE_METHODS = ("post", "put", "patch")
PUBLIC_ROUTES = {"/healthz", "/readyz", "/.well-known/jwks.json", "/api/schema/", "/v1/hooks/approval"}
# Writes that take no body by design (the action is the whole request); each answers an empty POST.
BODYLESS_WRITES = {
    ("post", "/v1/kernel/proposals/{id}/apply"),
    ("post", "/v1/memory/uploads/{upload_id}/reprocess"),
    ("post", "/v1/router/policy/reload"),
    ("post", "/v1/tasks/{id}/cancel"),
    ("post", "/v1/hooks/endpoints/{id}/ping"),
}
# Plain Django platform routes: no input and no throttle; what they can answer besides 200.
PLATFORM_ERRORS = {"/healthz": set(), "/.well-known/jwks.json": set(), "/metrics": {"401"}, "/readyz": {"503"}}


@pytest.fixture(scope="module")
def document(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_the_security_schemes_are_the_api_key_header_and_a_bearer_jwt(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["BearerJWT"] == {**schemes["BearerJWT"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def test_every_operation_declares_its_security_and_role(document):
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert "security" in operation, where
        role = operation.get("x-required-role")
        assert role and role != "undeclared", where
        if path in PUBLIC_ROUTES:
            assert operation["security"] == [], where
        elif path != "/metrics":
            names = {name for requirement in operation["security"] for name in requirement}
            assert {"ApiKey", "BearerJWT"} <= names, where
            assert role != PUBLIC, where
            assert f"`{role}`" in operation["description"] or role == "authenticated", where


def test_the_public_routes_are_in_the_document_and_marked_public(document):
    for path in PUBLIC_ROUTES:
        operation = next(iter(document["paths"][path].values()))
        assert operation["security"] == [], path
        assert operation["x-required-role"] in (PUBLIC, "hook-signature"), path


def test_every_write_documents_its_body(document):
    for path, method, operation in operations(document):
        if method not in WRITE_METHODS or (method, path) in BODYLESS_WRITES:
            continue
        body = operation.get("requestBody")
        assert body and body.get("content"), f"{method.upper()} {path} documents no body"
        for media in body["content"].values():
            schema = media.get("schema")
            assert schema and schema != {"type": "object"}, f"{method.upper()} {path} documents an empty body"


def test_every_operation_documents_its_error_responses_as_problems(document):
    for path, method, operation in operations(document):
        if path in PLATFORM_ERRORS:
            assert PLATFORM_ERRORS[path] <= operation["responses"].keys(), path
            continue
        where = f"{method.upper()} {path}"
        wanted = {"400", "406", "429", "503"}
        if operation["x-required-role"] != PUBLIC:
            wanted |= {"401", "403"}
        if "{" in path:
            wanted.add("404")
        if method in (*WRITE_METHODS, "delete"):
            wanted |= {"404", "409", "412", "413", "415", "422"}
        missing = wanted - operation["responses"].keys()
        assert not missing, f"{where} lacks {sorted(missing)}"
        for status in wanted:
            content = operation["responses"][status]["content"]
            assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}, (where, status)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def _schema(document, name):
    return document["components"]["schemas"][name]


def test_the_shapes_found_wrong_match_what_is_returned(document):
    """The mismatches a fuzzer found: each documented shape is the one the view returns."""
    paths = document["paths"]
    # HookSource.secret_fingerprints is a list of {fingerprint, created_at, expires_at}.
    fingerprints = _schema(document, "HookSource")["properties"]["secret_fingerprints"]
    assert fingerprints["type"] == "array" and fingerprints["readOnly"]
    # GET /v1/modules/{name}/versions: a page of versions, each with its required `active`.
    page = paths["/v1/modules/{name}/versions"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    listed = _schema(document, page["$ref"].rsplit("/", 1)[1])
    item = listed["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[1]
    assert "active" in _schema(document, item)["required"]
    # The endpoint ping answers with the test delivery, not the endpoint.
    ping = paths["/v1/hooks/endpoints/{id}/ping"]["post"]
    assert ping["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WebhookDelivery"}
    assert "requestBody" not in ping
    # Revision list items carry the same required fields as a single revision.
    revisions = paths["/v1/kernel/config/{scope}/revisions"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    listed = _schema(document, revisions["$ref"].rsplit("/", 1)[1])
    assert listed["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Revision"}
    # Memory and router bodies documented with their serializers.
    for path in ("/v1/memory/ingest", "/v1/memory/profile", "/v1/memory/search", "/v1/router/route", "/v1/tasks"):
        assert paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"], path
