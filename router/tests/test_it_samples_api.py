"""GET /v1/router/samples: the tenant's runtime samples with rule and intent, oldest first, windowed, paginated."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client, client_with_roles
from router.tests.training_samples import store_samples

pytestmark = pytest.mark.django_db


def test_samples_are_paginated_oldest_first_with_rule_and_intent():
    start = store_samples(30)
    admin = client_with_roles([Role.ROUTER_ADMIN])
    first = admin.get("/v1/router/samples", {"limit": 25})
    assert first.status_code == 200, first.json()
    body = first.json()
    assert body["count"] == 60
    assert len(body["results"]) == 25
    times = [r["created_at"] for r in body["results"]]
    assert times == sorted(times)
    assert body["results"][0]["rule"] == "default"
    assert body["results"][0]["intent"] == "chat.answer"
    assert {"sample_id", "task_id", "target", "route", "outcome", "latency_ms", "tokens", "cost_usd"} <= set(body["results"][0])
    rest = admin.get(body["next"].split("testserver", 1)[-1]).json()
    assert len(rest["results"]) == 25
    since = (start + timedelta(minutes=40)).isoformat()
    windowed = admin.get("/v1/router/samples", {"since": since}).json()
    assert windowed["count"] == 20
    assert admin.get("/v1/router/samples", {"since": "not a time"}).status_code == 400
    assert admin.get("/v1/router/samples", {"since": "2026-01-01T00:00:00+23:00"}).status_code == 400


def test_samples_are_tenant_scoped_and_auditors_read():
    store_samples(5, tenant=OTHER_TENANT)
    store_samples(3)
    teammate = client_with_roles([Role.AUDITOR])
    assert teammate.get("/v1/router/samples").json()["count"] == 6
    outsider = client_with_roles([Role.ROUTER_ADMIN], tenant="initech")
    assert outsider.get("/v1/router/samples").json()["count"] == 0


def test_samples_need_a_router_role():
    assert api_client().get("/v1/router/samples").status_code == 401
    assert client_with_roles([Role.MEMORY_READER]).get("/v1/router/samples").status_code == 403
    assert client_with_roles([Role.ROUTER_ADMIN]).post("/v1/router/samples", {}).status_code == 405  # read-only
