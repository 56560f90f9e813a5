"""Task endpoints: submit (202, Idempotency-Key), status, filtered list, cancel, and authorisation."""

from __future__ import annotations

import uuid

import pytest

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client, client_with_roles
from aion.testing.router_targets import basic_policy, events
from aion.topics import TASKS_LIFECYCLE
from router.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture()
def owner():
    return client_with_roles([Role.ROUTER_ADMIN])


@pytest.fixture()
def ready_policy(policy_file):
    policy_file.write(basic_policy("http://127.0.0.1:9", "http://127.0.0.1:9"))
    return policy_file


TASK = {
    "intent": "chat.answer",
    "params": {"prompt": "hello"},
    "priority": "high",
    "sla": {"privacy": "allow-api"},
    "metadata": {"team": "ml"},
}


def test_submit_returns_202_with_the_task_id_and_queues_execution(owner, ready_policy, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = owner.post("/v1/tasks", TASK, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    task = Task.objects.get(pk=body["id"])
    assert body["status"] == "PENDING" and task.tenant_id == "acme"
    assert response["Location"] == f"/v1/tasks/{task.id}"
    assert body["engine"]["target"] == "local-a" and body["engine"]["chosen_by"] == "default"
    assert len(callbacks) == 1  # the Celery enqueue runs only once the row is committed
    assert AuditRecord.objects.filter(action="task.submit", resource_id=str(task.id)).exists()
    assert events(TASKS_LIFECYCLE)[0]["type"] == "task.pending"


def test_the_same_idempotency_key_returns_the_same_task(owner, ready_policy):
    first = owner.post("/v1/tasks", TASK, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    again = owner.post("/v1/tasks", TASK, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replay"] == "true"
    assert Task.objects.count() == 1
    other_body = owner.post("/v1/tasks", {**TASK, "intent": "chat.other"}, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert other_body.status_code == 422


def test_the_domain_idempotency_holds_without_the_gateway_layer(ready_policy):
    """Two credentials of one tenant (the gateway keys its store per credential) still get one task."""
    from aion.auth.principal import system_principal
    from router import services

    a, created_a = services.submit_task(TASK, actor=system_principal("acme", "a"), tenant_id="acme", idempotency_key="k1")
    b, created_b = services.submit_task(TASK, actor=system_principal("acme", "b"), tenant_id="acme", idempotency_key="k1")
    assert a.pk == b.pk and created_a and not created_b


def test_get_returns_status_engine_usage_and_error(owner, ready_policy):
    task_id = owner.post("/v1/tasks", TASK, format="json").json()["id"]
    body = owner.get(f"/v1/tasks/{task_id}").json()
    assert body["status"] == "PENDING"
    assert set(body["engine"]) == {"route", "target", "chosen_by", "reason"}
    assert set(body["usage"]) == {"latency_ms", "tokens", "cost_usd"}
    assert body["error"] is None


def test_list_is_filtered_and_tenant_scoped(owner, ready_policy):
    Task.objects.create(tenant_id="acme", intent="chat.answer", status="OK", route="local", target="local-a")
    Task.objects.create(tenant_id="acme", intent="embed.text", status="ERROR", route="api", target="cloud")
    Task.objects.create(tenant_id=OTHER_TENANT, intent="chat.answer", status="OK")
    assert owner.get("/v1/tasks").json()["count"] == 2
    assert [t["intent"] for t in owner.get("/v1/tasks?status=OK").json()["results"]] == ["chat.answer"]
    assert owner.get("/v1/tasks?intent=chat.*").json()["count"] == 1
    assert owner.get("/v1/tasks?route=api").json()["results"][0]["engine"]["target"] == "cloud"
    assert owner.get("/v1/tasks?status=BOGUS").status_code == 400


def test_cancel_pending_then_cancel_again_is_409(owner, ready_policy):
    task_id = owner.post("/v1/tasks", TASK, format="json").json()["id"]
    response = owner.post(f"/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "CANCELED"
    assert owner.post(f"/v1/tasks/{task_id}/cancel").status_code == 409
    assert AuditRecord.objects.filter(action="task.cancel", resource_id=task_id).exists()
    assert [e["type"] for e in events(TASKS_LIFECYCLE)] == ["task.pending", "task.canceled"]


def test_task_routes_negative_authorisation(owner, ready_policy):
    task_id = owner.post("/v1/tasks", TASK, format="json").json()["id"]
    anonymous, wrong_role = api_client(), client_with_roles([Role.MEMORY_READER])
    outsider = client_with_roles([Role.ROUTER_ADMIN], tenant=OTHER_TENANT)
    teammate_auditor = client_with_roles([Role.AUDITOR])
    for method, path in (
        ("post", "/v1/tasks"),
        ("get", "/v1/tasks"),
        ("get", f"/v1/tasks/{task_id}"),
        ("post", f"/v1/tasks/{task_id}/cancel"),
        ("get", f"/v1/tasks/{task_id}/events"),
    ):
        assert getattr(anonymous, method)(path).status_code == 401, path
        assert getattr(wrong_role, method)(path).status_code == 403, path
    for method, path in (("get", f"/v1/tasks/{task_id}"), ("post", f"/v1/tasks/{task_id}/cancel"), ("get", f"/v1/tasks/{task_id}/events")):
        assert getattr(outsider, method)(path).status_code == 404, path
    assert outsider.get(f"/v1/tasks/{uuid.uuid4()}").status_code == 404
    # the documented mapping (docs/router.md "Roles"): auditors read tasks, only router.admin submits or cancels
    assert teammate_auditor.get(f"/v1/tasks/{task_id}").status_code == 200
    assert [t["id"] for t in teammate_auditor.get("/v1/tasks").json()["results"]] == [task_id]
    assert teammate_auditor.post(f"/v1/tasks/{task_id}/cancel").status_code == 403
    assert teammate_auditor.post("/v1/tasks", TASK, format="json").status_code == 403
    assert Task.objects.get(pk=task_id).status == "PENDING" and Task.objects.count() == 1


def test_invalid_task_bodies_are_400_problems(owner, ready_policy):
    response = owner.post(
        "/v1/tasks", {"intent": "a b", "preferred_engine": "gpu", "params": [1], "metadata": {"a": {"b": 1}}}, format="json"
    )
    assert response.status_code == 400
    assert {"intent", "preferred_engine", "params"} <= set(response.json()["errors"])
