"""The Console shell: redirect, login/logout, the dashboard's live readiness, no CDN assets."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from aion.testing.factories import make_user


@pytest.mark.django_db
def test_root_redirects_to_console_and_console_needs_login(client):
    assert client.get("/")["Location"] == "/console/"
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")


@pytest.mark.django_db
def test_login_dashboard_and_logout(client):
    make_user("olivia", roles=["kernel.admin"])
    page = client.get("/console/login/")
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    response = client.post("/console/login/", {"username": "olivia", "password": "pw-for-tests-only"})
    assert response.status_code == 302
    dashboard = client.get("/console/")
    assert dashboard.status_code == 200
    html = dashboard.content.decode()
    for label in ("Proposals", "Webhooks", "Memory", "Router", "Modules", "Audit"):
        assert label in html
    assert 'data-dep="database"' in html
    for href in ("/console/proposals/", "/console/webhooks/", "/console/memory/", "/console/router/", "/console/modules/"):
        assert f'href="{href}' in html, f"nav link {href} missing"
    status = client.get("/console/status.json").json()
    assert status["dependencies"]["database"]["status"] == "ok"
    client.post("/console/logout/")
    assert client.get("/console/").status_code == 302


@pytest.mark.django_db
def test_wrong_password_is_refused(client):
    make_user("olivia")
    response = client.post("/console/login/", {"username": "olivia", "password": "nope"})
    assert response.status_code == 200 and b"match" in response.content


def test_no_template_or_static_asset_loads_from_a_cdn():
    cdn = re.compile(r"https?://(cdn\.|unpkg\.com|cdnjs\.|code\.jquery|fonts\.googleapis|cdn\.jsdelivr)")
    roots = [Path(settings.BASE_DIR) / "templates", Path(settings.BASE_DIR) / "static"]
    offenders = [str(p) for root in roots for p in root.rglob("*") if p.is_file() and cdn.search(p.read_text(errors="ignore"))]
    assert offenders == []


@pytest.mark.django_db
def test_admin_registers_every_apps_models():
    from django.apps import apps
    from django.contrib import admin

    ours = ("aion", "ops", "kernel", "memory", "modules", "router", "hooks")
    missing = [m.__name__ for m in apps.get_models() if m._meta.app_label in ours and m not in admin.site._registry]
    assert missing == [], f"not registered in Django admin: {missing}"
