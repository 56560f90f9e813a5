"""Keep-alive to targets stays pinned: one pooled client per checked destination, never shared across names.

The router reuses connections to module hosts (a new connection per task was most of a local
call), and the SSRF guard's pinning must hold for the pooled connections too.
"""

from __future__ import annotations

import pytest

from aion.netguard import Destination, check_url
from aion.testing.router_targets import basic_policy
from router import services
from router.clients import client_for
from router.tests.test_it_task_execution import ACTOR

pytestmark = pytest.mark.django_db


def test_the_same_destination_reuses_its_client_and_another_host_name_gets_its_own():
    a = Destination("http", "module-a.example", 8080, "10.1.2.3")
    same = Destination("http", "MODULE-A.example", 8080, "10.1.2.3")
    other_name = Destination("http", "module-b.example", 8080, "10.1.2.3")
    assert client_for(a) is client_for(same)
    assert client_for(other_name) is not client_for(a)


def test_a_host_that_moves_to_another_address_gets_a_new_client():
    before = client_for(Destination("https", "moving.example", 443, "10.9.9.1"))
    after = client_for(Destination("https", "moving.example", 443, "10.9.9.2"))
    assert after is not before
    assert client_for(Destination("https", "moving.example", 443, "10.9.9.2")) is after


def test_consecutive_tasks_to_one_host_share_one_kept_alive_connection(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url, route="local"))
    for _ in range(3):
        task, _ = services.submit_task({"intent": "chat.answer"}, actor=ACTOR, tenant_id="acme")
        assert services.execute_task(str(task.id)) == "OK"
    assert len(module_host.requests) == 3
    pool = client_for(check_url(module_host.url + "/v1/invoke", allow_private=True))._transport._pool  # type: ignore[attr-defined]
    assert len(pool.connections) == 1
