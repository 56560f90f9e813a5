"""Console Router page: active policy, diff, Reload/Rollback buttons, live data (tasks, p95, decision mix)."""

from __future__ import annotations

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import make_user
from router import services
from router.models import PolicyRevision, RuntimeSample, Task

pytestmark = pytest.mark.django_db

POLICY = """
version: 1
targets: [{name: local-a, kind: module, endpoint: "http://127.0.0.1:9"}]
default: {route: local, strategy: priority, candidates: [local-a]}
"""


def console(roles) -> Client:
    client = Client()
    client.force_login(make_user(f"user-{'-'.join(sorted(roles)) or 'none'}", roles))
    return client


def test_the_page_on_an_empty_database_stores_nothing_and_says_the_file_is_in_use(policy_file):
    policy_file.write(POLICY)
    page = console([Role.ROUTER_ADMIN]).get("/console/router/")
    assert page.status_code == 200 and "No revision is stored yet" in page.content.decode()
    assert not PolicyRevision.objects.exists()  # a read never writes: revision 1 is router_policy bootstrap or a reload


def test_the_page_shows_the_policy_and_reload_creates_a_revision(policy_file):
    policy_file.write(POLICY)
    services.bootstrap_policy()  # what the migrate job runs
    admin = console([Role.ROUTER_ADMIN])
    page = admin.get("/console/router/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Active policy" in html and "r1" in html and 'id="reload-button"' in html and "p95-chart" in html
    policy_file.write(POLICY.replace("priority", "least-busy"))
    response = admin.post("/console/router/reload")
    assert response.status_code == 302 and response["Location"] == "/console/router/"
    assert PolicyRevision.objects.count() == 2
    diff_page = admin.get("/console/router/?a=1&b=2").content.decode()
    assert '<span class="diff-new">+default: {route: local, strategy: least-busy' in diff_page
    rollback = admin.post("/console/router/rollback", {"revision": 1})
    assert rollback.status_code == 302
    assert PolicyRevision.objects.get(number=3).restored_from == 1


def test_an_invalid_file_shows_an_error_and_changes_nothing(policy_file):
    policy_file.write(POLICY)
    services.bootstrap_policy()
    admin = console([Role.ROUTER_ADMIN])
    policy_file.write(POLICY + "surprise: 1\n")
    page = admin.post("/console/router/reload", follow=True).content.decode()
    assert "invalid" in page and "surprise" in page
    assert PolicyRevision.objects.count() == 1


def test_live_data_has_tasks_p95_series_and_decision_mix(policy_file):
    policy_file.write(POLICY)
    Task.objects.create(tenant_id="acme", intent="chat", status="RUNNING", route="local", target="local-a", strategy="priority")
    Task.objects.create(tenant_id="globex", intent="secret", status="OK", route="local", target="local-a", strategy="priority")
    RuntimeSample.objects.create(tenant_id="acme", target="local-a", route="local", outcome="ok", latency_ms=12.0)
    body = console([Role.ROUTER_ADMIN]).get("/console/router/data.json").json()
    assert [t["intent"] for t in body["tasks"]] == ["chat"]  # only the user's tenant
    assert body["decision_mix"] == [{"route": "local", "strategy": "priority", "count": 1}]
    assert body["p95"]["local-a"][0]["p95_ms"] == 12.0


def test_console_authorisation(policy_file):
    policy_file.write(POLICY)
    assert Client().get("/console/router/").status_code == 302  # to the login page
    assert console([Role.MEMORY_READER]).get("/console/router/").status_code == 403
    auditor = console([Role.AUDITOR])
    assert auditor.get("/console/router/").status_code == 200
    assert 'id="reload-button"' not in auditor.get("/console/router/").content.decode()
    assert auditor.post("/console/router/reload").status_code == 403
    assert auditor.post("/console/router/rollback", {"revision": 1}).status_code == 403
