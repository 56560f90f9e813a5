"""Console → Modules: the rollback form keeps the chosen version and the reason after an error, and stays tenant-scoped."""

from __future__ import annotations

import pytest
from django.test import Client

from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.module_releases import register
from modules.models import Module

pytestmark = pytest.mark.django_db
ROLLBACK = "/console/modules/summarizer/rollback/"


def logged_in(username, roles, tenant="acme"):
    client = Client()
    client.force_login(make_user(username, roles, tenant))
    return client


def active() -> str:
    return Module.objects.get(name="summarizer").active_version.version


def test_a_refused_rollback_reopens_the_dialog_with_the_choice_and_the_reason(key):
    register(key, "1.0.0")
    register(key, "2.0.0")
    admin = logged_in("olivia", ["modules.admin"])
    blank = admin.post(ROLLBACK, {"version": "1.0.0", "reason": "  "})
    assert blank.status_code == 400
    html = blank.content.decode()
    assert '<dialog id="rollback-dialog" open>' in html and '<option value="1.0.0" selected>' in html
    assert "A reason is required to roll back." in html
    unknown = admin.post(ROLLBACK, {"version": "9.9.9", "reason": "typed reason"}).content.decode()
    assert "Select a valid choice" in unknown and 'value="typed reason"' in unknown
    active_one = admin.post(ROLLBACK, {"version": "2.0.0", "reason": "typed reason"}).content.decode()
    assert "Select a valid choice" in active_one  # the active version is not a rollback target
    assert active() == "2.0.0"
    done = admin.post(ROLLBACK, {"version": "1.0.0", "reason": "2.0.0 regressed"})
    assert done.status_code == 302 and active() == "1.0.0"


def test_negative_authorisation_of_the_rollback_form(key):
    register(key, "1.0.0")
    register(key, "2.0.0")
    assert logged_in("audrey", ["auditor"]).post(ROLLBACK, {"reason": "x"}).status_code == 403
    assert logged_in("oscar", ["modules.admin"], OTHER_TENANT).post(ROLLBACK, {"reason": "x"}).status_code == 404
    assert active() == "2.0.0"
