"""A method a route does not serve is a 405 problem with Allow, checked before the role (never a 403)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from aion.problems import PROBLEM_CONTENT_TYPE
from aion.roles import Role
from aion.testing.factories import client_with_roles

pytestmark = pytest.mark.django_db

ROUTES = ["/v1/audit", "/v1/kernel/proposals", "/v1/hooks/deliveries", "/v1/tasks", "/v1/whoami", "/v1/router/policy"]


def _assert_405(response) -> None:
    assert response.status_code == 405, response.content
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)
    assert response.json()["status"] == 405
    assert "Allow" in response and "TRACE" not in response["Allow"]


@pytest.mark.parametrize("path", ROUTES)
def test_trace_is_405_with_allow_for_a_caller_without_the_role(path):
    # A teammate holding no role for the route: the method check comes before the role check.
    _assert_405(client_with_roles([Role.MEMORY_READER]).generic("TRACE", path))


@pytest.mark.parametrize("path", ROUTES)
def test_trace_is_405_without_credentials(path):
    _assert_405(APIClient().generic("TRACE", path))


def test_unserved_write_method_is_405_not_403():
    # PUT on the audit list: the auditor role is read-only, but the route does not serve PUT at all.
    _assert_405(client_with_roles([Role.MEMORY_READER]).put("/v1/audit", {}, format="json"))
    _assert_405(client_with_roles([Role.AUDITOR]).delete("/v1/kernel/proposals"))


def test_served_method_without_the_role_is_still_403():
    response = client_with_roles([Role.MEMORY_READER]).get("/v1/audit")
    assert response.status_code == 403
