"""Console → Router on Forms: the compare form and the rollback form validate what was sent (never a 500)."""

from __future__ import annotations

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import make_user
from router import services
from router.models import PolicyRevision
from router.tests.test_it_console_policy import POLICY

pytestmark = pytest.mark.django_db


def console(username: str, roles: list[str]) -> Client:
    client = Client()
    client.force_login(make_user(username, roles))
    return client


def test_rollback_accepts_only_a_revision_the_menu_offers(policy_file):
    policy_file.write(POLICY)
    services.bootstrap_policy()
    admin = console("ada", [Role.ROUTER_ADMIN])
    for bad in ({}, {"revision": "x"}, {"revision": "1"}, {"revision": "99"}):  # 1 is the active one
        refused = admin.post("/console/router/rollback", bad, follow=True).content.decode()
        assert "Rollback refused:" in refused, bad
    assert PolicyRevision.objects.count() == 1
    policy_file.write(POLICY.replace("priority", "least-busy"))
    admin.post("/console/router/reload")
    done = admin.post("/console/router/rollback", {"revision": "1"}, follow=True).content.decode()
    assert "Rolled back to r1 as r3." in done


def test_a_bad_comparison_falls_back_to_the_default_diff(policy_file):
    policy_file.write(POLICY)
    services.bootstrap_policy()
    admin = console("ada", [Role.ROUTER_ADMIN])
    for query in ({"a": "x", "b": "-4"}, {"a": "0", "b": "1"}):
        assert admin.get("/console/router/", query).status_code == 200


def test_negative_authorisation_of_the_router_forms(policy_file):
    policy_file.write(POLICY)
    services.bootstrap_policy()
    auditor = console("audrey", [Role.AUDITOR])
    assert auditor.post("/console/router/rollback", {"revision": "1"}).status_code == 403
    assert auditor.post("/console/router/reload").status_code == 403
    assert Client().post("/console/router/rollback", {"revision": "1"}).status_code == 302
