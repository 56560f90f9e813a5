"""Policy lifecycle API: reload (valid, invalid, identical, concurrent), GET with history, rollback, auth."""

from __future__ import annotations

import threading

import pytest

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client, client_with_roles
from aion.testing.router_targets import events
from aion.topics import ROUTER_POLICIES
from router.models import PolicyRevision
from router.policy_store import active_policy

POLICY_A = """
version: 1
targets: [{name: local-a, kind: module, endpoint: "http://127.0.0.1:9"}]
default: {route: local, strategy: priority, candidates: [local-a]}
"""
POLICY_B = POLICY_A.replace("strategy: priority", "strategy: least-busy")

pytestmark = pytest.mark.django_db


@pytest.fixture()
def admin():
    return client_with_roles([Role.ROUTER_ADMIN])


def test_reload_stores_a_revision_with_sha_author_and_diff_and_emits_audit_and_event(admin, policy_file):
    policy_file.write(POLICY_A)
    first = admin.post("/v1/router/policy/reload")
    assert first.status_code == 201, first.json()
    assert first.json()["changed"] is True
    policy_file.write(POLICY_B)
    second = admin.post("/v1/router/policy/reload")
    assert second.status_code == 201
    revision = PolicyRevision.objects.get(number=second.json()["revision"]["revision"])
    assert revision.author.startswith("key:")
    assert "-default: {route: local, strategy: priority" in revision.diff
    assert "+default: {route: local, strategy: least-busy" in revision.diff
    assert active_policy().default.strategy == "least-busy"
    assert AuditRecord.objects.filter(action="router.policy.reload", resource_id=str(revision.number)).exists()
    changed = [e for e in events(ROUTER_POLICIES) if e["type"] == "router.policy.changed"]
    assert [e["data"]["revision"] for e in changed] == [1, 2]
    assert changed[1]["data"]["previous_revision"] == 1


def test_identical_content_creates_no_new_revision(admin, policy_file):
    policy_file.write(POLICY_A)
    assert admin.post("/v1/router/policy/reload").status_code == 201
    again = admin.post("/v1/router/policy/reload")
    assert again.status_code == 200
    assert again.json()["changed"] is False
    assert PolicyRevision.objects.count() == 1
    assert len(events(ROUTER_POLICIES)) == 1


def test_an_invalid_file_is_a_400_with_paths_and_the_active_policy_is_unchanged(admin, policy_file):
    policy_file.write(POLICY_A)
    admin.post("/v1/router/policy/reload")
    policy_file.write(POLICY_A.replace("strategy: priority", "strategy: fastest, colour: red"))
    response = admin.post("/v1/router/policy/reload")
    assert response.status_code == 400
    body = response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert body["type"].endswith("policy-invalid")
    assert "default.colour" in body["errors"] and "default.strategy" in body["errors"]
    assert PolicyRevision.objects.count() == 1
    assert active_policy().default.strategy == "priority"


def test_a_missing_file_is_a_400_too(admin, policy_file):
    response = admin.post("/v1/router/policy/reload")
    assert response.status_code == 400
    assert "(file)" in response.json()["errors"]


def test_get_policy_returns_the_active_revision_and_history(admin, policy_file):
    policy_file.write(POLICY_A)
    admin.post("/v1/router/policy/reload")
    policy_file.write(POLICY_B)
    admin.post("/v1/router/policy/reload")
    body = admin.get("/v1/router/policy").json()
    assert body["active"]["revision"] == 2
    assert "least-busy" in body["active"]["content"]
    assert [h["revision"] for h in body["history"]] == [2, 1]


def test_reads_on_an_empty_database_store_no_revision_and_decide_with_the_file(admin, policy_file):
    policy_file.write(POLICY_A)
    body = admin.get("/v1/router/policy").json()
    assert body == {"active": None, "history": []}
    targets = admin.get("/v1/router/targets").json()
    assert targets["policy_revision"] == 0 and [t["name"] for t in targets["targets"]] == ["local-a"]
    assert admin.post("/v1/router/route", {"intent": "chat.answer"}, format="json").json()["policy_revision"] == 0
    assert not PolicyRevision.objects.exists()
    assert not AuditRecord.objects.filter(action__startswith="router.policy.").exists()


def test_get_policy_on_an_empty_database_with_an_invalid_file_is_a_400_and_stores_nothing(admin, policy_file):
    policy_file.write(POLICY_A + "surprise: 1\n")
    response = admin.get("/v1/router/policy")
    assert response.status_code == 400 and "surprise" in response.json()["errors"]
    assert not PolicyRevision.objects.exists()


def test_bootstrap_stores_the_file_as_revision_1_once_and_never_overrides_a_reload(admin, policy_file):
    from router import services

    policy_file.write(POLICY_A)
    revision, created = services.bootstrap_policy()
    assert (revision.number, revision.source, created) == (1, "bootstrap", True)
    body = admin.get("/v1/router/policy").json()
    assert body["active"]["revision"] == 1 and body["active"]["source"] == "bootstrap"
    policy_file.write(POLICY_B)
    assert services.bootstrap_policy()[1] is False  # an active revision is never replaced by a bootstrap
    assert admin.post("/v1/router/policy/reload").status_code == 201
    assert services.bootstrap_policy()[0].number == 2
    assert PolicyRevision.objects.count() == 2


def test_rollback_reactivates_an_earlier_revision_as_a_new_one(admin, policy_file):
    policy_file.write(POLICY_A)
    admin.post("/v1/router/policy/reload")
    policy_file.write(POLICY_B)
    admin.post("/v1/router/policy/reload")
    response = admin.post("/v1/router/policy/rollback", {"revision": 1}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["revision"]["revision"] == 3
    assert response.json()["revision"]["restored_from"] == 1
    assert active_policy().default.strategy == "priority"
    assert AuditRecord.objects.filter(action="router.policy.rollback").exists()
    assert events(ROUTER_POLICIES)[-1]["data"]["source"] == "rollback"
    # rolling back to the content that is already active changes nothing
    again = admin.post("/v1/router/policy/rollback", {"revision": 1}, format="json")
    assert again.status_code == 200 and again.json()["changed"] is False


def test_rollback_to_an_unknown_revision_is_404_and_bad_input_is_400(admin, policy_file):
    policy_file.write(POLICY_A)
    admin.post("/v1/router/policy/reload")
    assert admin.post("/v1/router/policy/rollback", {"revision": 99}, format="json").status_code == 404
    bad = admin.post("/v1/router/policy/rollback", {"revision": "x"}, format="json")
    assert bad.status_code == 400 and "revision" in bad.json()["errors"]


def test_policy_routes_need_router_admin(policy_file):
    policy_file.write(POLICY_A)
    anonymous = api_client()
    wrong_role = client_with_roles([Role.MEMORY_WRITER])
    auditor = client_with_roles([Role.AUDITOR], tenant=OTHER_TENANT)
    for path in ("/v1/router/policy/reload", "/v1/router/policy/rollback", "/v1/router/route"):
        assert anonymous.post(path, {}, format="json").status_code == 401
        assert wrong_role.post(path, {}, format="json").status_code == 403
        assert auditor.post(path, {}, format="json").status_code == 403  # auditors read, never write
    for path in ("/v1/router/policy", "/v1/router/targets"):
        assert anonymous.get(path).status_code == 401
        assert wrong_role.get(path).status_code == 403
        assert auditor.get(path).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_reloads_create_exactly_one_revision(policy_file):
    from aion.auth.principal import system_principal
    from router import services

    policy_file.write(POLICY_A)
    results, failures = [], []

    def reload() -> None:
        from django.db import connection

        try:
            results.append(services.reload_policy(actor=system_principal("acme"), tenant_id="acme")[1])
        except Exception as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(results) == [False] * 5 + [True]
    assert PolicyRevision.objects.count() == 1


def test_a_policy_change_becomes_a_webhook_delivery_for_subscribed_endpoints(admin, policy_file, settings, http_server):
    """Cross-app contract: the hooks app turns router.policy.changed outbox events into deliveries."""
    from aion.auth.principal import system_principal
    from hooks.models import WebhookDelivery
    from hooks.services import create_endpoint

    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    create_endpoint(tenant_id="acme", url=http_server.url("/hook"), event_types=["router.policy.*"], actor=system_principal("acme"))
    policy_file.write(POLICY_A)
    assert admin.post("/v1/router/policy/reload").status_code == 201
    delivery = WebhookDelivery.objects.get(event_type="router.policy.changed")
    assert delivery.tenant_id == "acme" and delivery.payload["data"]["revision"] == 1


def test_readyz_reports_the_active_revision_and_a_broken_file(admin, policy_file, client):
    policy_file.write(POLICY_A)
    admin.post("/v1/router/policy/reload")
    entry = client.get("/readyz").json()["dependencies"]["router_policy"]
    assert (entry["status"], entry["active_revision"], entry["file_valid"]) == ("ok", 1, True)
    policy_file.write("version: 1\nunknown: true\n")
    entry = client.get("/readyz").json()["dependencies"]["router_policy"]
    assert (entry["status"], entry["active_revision"], entry["file_valid"]) == ("degraded", 1, False)
