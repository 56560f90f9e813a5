"""The per-process policy check: decisions skip the database within AION_ROUTER_POLICY_CHECK_SECONDS.

What another process's reload leaves in the database (a new revision row and the moved
``PolicyState`` pointer) is written here with the ORM, bypassing this process's services, so
this process learns of it only through its bounded check. Reloads and rollbacks through the
services take effect in the same process at once; task execution always checks.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aion.auth.principal import system_principal
from aion.testing.router_targets import basic_policy
from router import services
from router.models import PolicyRevision, PolicyState, Task
from router.policy_store import forget_cached_policy

pytestmark = pytest.mark.django_db

ACTOR = system_principal("acme", "tests")
BOUND_SECONDS = 0.5


@pytest.fixture()
def bounded_check(settings):
    settings.AION_ROUTER_POLICY_CHECK_SECONDS = BOUND_SECONDS
    settings.AION_ROUTER_STATS_CACHE_SECONDS = 60  # isolate the policy check from the runtime figures
    forget_cached_policy()
    yield
    forget_cached_policy()


def activate_elsewhere(content: str) -> int:
    """What a reload in another process leaves behind: a new revision and the moved pointer."""
    number = PolicyRevision.objects.order_by("-number").values_list("number", flat=True).first() + 1
    PolicyRevision.objects.create(number=number, content=content, sha256=hashlib.sha256(content.encode()).hexdigest(), author="other")
    PolicyState.objects.filter(pk=1).update(active_number=number)
    return number


def dry_run() -> int:
    return services.route_task({"intent": "chat.answer", "seed": "1"}, tenant_id="acme").policy_revision


def test_within_the_bound_a_dry_run_reads_nothing_from_the_database(bounded_check, policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    assert dry_run() == 1  # fills the per-process policy and runtime figures
    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            assert dry_run() == 1
    assert len(queries.captured_queries) == 0, [q["sql"] for q in queries.captured_queries]


def test_a_reload_in_another_process_takes_effect_within_the_bound(bounded_check, policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    assert dry_run() == 1
    changed_at = time.monotonic()
    number = activate_elsewhere(basic_policy(module_host.url, provider.url, strategy="least-busy"))
    seen = dry_run()
    while seen != number and time.monotonic() - changed_at < BOUND_SECONDS + 2:
        seen = dry_run()
    elapsed = time.monotonic() - changed_at
    assert seen == number
    assert elapsed <= BOUND_SECONDS + 0.25, f"took {elapsed:.3f}s, bound {BOUND_SECONDS}s"


def test_reload_and_rollback_in_this_process_take_effect_at_once(bounded_check, policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    assert dry_run() == 1
    policy_file.write(basic_policy(module_host.url, provider.url, strategy="least-busy"))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    assert dry_run() == 2
    services.rollback_policy(1, actor=ACTOR, tenant_id="acme")
    decision = services.route_task({"intent": "chat.answer", "seed": "1"}, tenant_id="acme")
    assert (decision.policy_revision, decision.strategy) == (3, "priority")


def test_execution_routes_with_the_revision_active_now_whatever_the_bound(bounded_check, policy_file, module_host, module_host_b, provider):
    policy_file.write(basic_policy(module_host.url, provider.url, route="local"))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    task, _ = services.submit_task({"intent": "chat.answer"}, actor=ACTOR, tenant_id="acme")
    number = activate_elsewhere(basic_policy(module_host_b.url, provider.url, route="local"))
    assert dry_run() == 1  # the dry run may still use the checked revision (within the bound)
    assert services.execute_task(str(task.id)) == "OK"
    task = Task.objects.get(pk=task.pk)
    assert task.policy_revision == number
    assert len(module_host_b.requests) == 1 and module_host.requests == []
