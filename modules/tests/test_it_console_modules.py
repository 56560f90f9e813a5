"""Console Modules pages: list (version, key id, pool/selector, health, history), detail with Rollback, key-rotation report."""

from __future__ import annotations

import pytest
from django.test import Client

from aion.models import AuditRecord
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.module_releases import register
from modules.models import Module

pytestmark = pytest.mark.django_db


def logged_in(username, roles, tenant="acme"):
    client = Client()
    client.force_login(make_user(username, roles=roles, tenant=tenant))
    return client


def active():
    return Module.objects.select_related("active_version").get(name="summarizer").active_version.version


def test_the_module_list_shows_signature_pool_selector_health_and_history(key):
    register(key, "1.0.0")
    register(key, "1.1.0")
    register(key, "0.5.0", name="gpu-llm", pool="gpu", intents=("chat.*",))
    register(key, "9.9.9", name="secret-module", tenant=OTHER_TENANT)
    page = logged_in("olivia", ["modules.admin"]).get("/console/modules/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-module="summarizer"' in html and 'data-module="gpu-llm"' in html
    assert "secret-module" not in html  # another tenant's module
    assert "k2026" in html
    assert "aion.io/pool=gpu" in html
    assert 'class="badge unknown"' in html
    assert "1.1.0, 1.0.0" in html


def test_detail_and_rollback_with_confirmation_and_reason(key):
    register(key, "1.0.0")
    register(key, "2.0.0")
    admin = logged_in("olivia", ["modules.admin"])
    detail = admin.get("/console/modules/summarizer/")
    html = detail.content.decode()
    assert 'id="rollback-dialog"' in html and "Confirm rollback" in html and 'name="reason" required' in html
    assert "Previous active version (1.0.0)" in html

    refused = admin.post("/console/modules/summarizer/rollback/", {"reason": ""}, follow=True)
    assert "A reason is required" in refused.content.decode()
    assert active() == "2.0.0"

    done = admin.post("/console/modules/summarizer/rollback/", {"reason": "2.0.0 regressed"}, follow=True)
    assert "rolled back to 1.0.0" in done.content.decode()
    assert active() == "1.0.0"
    assert AuditRecord.objects.get(action="module.rollback").actor == "user:olivia"


def test_a_refused_rollback_shows_why(keys):
    old = keys.new("k2025")
    register(old, "1.0.0")
    register(keys.new("k2026"), "2.0.0")
    keys.retire("k2025")
    page = logged_in("olivia", ["modules.admin"]).post("/console/modules/summarizer/rollback/", {"reason": "x"}, follow=True)
    assert "Rollback refused" in page.content.decode() and "retired_key" in page.content.decode()
    assert active() == "2.0.0"


def test_key_rotation_report_page(keys):
    register(keys.new("k2025"), "1.0.0", name="legacy")
    keys.new("k2026")
    keys.retire("k2025")
    html = logged_in("olivia", ["modules.admin"]).get("/console/modules/trusted-keys/").content.decode()
    assert 'data-key="k2025"' in html and 'data-key="k2026"' in html
    assert "1 would fail" in html
    assert "retired_key" in html


def test_roles_and_tenants(key, client):
    register(key, "1.0.0")
    register(key, "2.0.0")
    assert client.get("/console/modules/").status_code == 302  # login first
    outsider = logged_in("mallory", ["modules.admin"], tenant=OTHER_TENANT)
    assert outsider.get("/console/modules/summarizer/").status_code == 404
    assert outsider.post("/console/modules/summarizer/rollback/", {"reason": "x"}).status_code == 404
    wrong_role = logged_in("rita", ["router.admin"])
    assert wrong_role.get("/console/modules/").status_code == 403
    auditor = logged_in("audrey", ["auditor"])
    page = auditor.get("/console/modules/summarizer/")
    assert page.status_code == 200 and "rollback-dialog" not in page.content.decode()  # read-only
    assert auditor.post("/console/modules/summarizer/rollback/", {"reason": "x"}).status_code == 403
    assert active() == "2.0.0"
