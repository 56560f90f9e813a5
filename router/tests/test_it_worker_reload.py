"""A policy reload is seen by a separate, already running Celery worker process without a restart.

The worker is a real subprocess consuming the configured broker and the test database.
"""

from __future__ import annotations

import time
import uuid

import pytest

from aion.auth.principal import system_principal
from aion.testing.processes import start_celery_worker, stop
from router import services
from router.models import Task
from router.tests.conftest import basic_policy

ACTOR = system_principal("acme", "tests")


def wait_final(task_id, seconds: float = 60) -> Task:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task = Task.objects.get(pk=task_id)
        if task.status in ("OK", "ERROR", "TIMEOUT", "CANCELED"):
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish: {Task.objects.get(pk=task_id).status}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_uses_the_new_policy_after_reload(policy_file, module_host, module_host_b, provider, settings):
    # A queue of its own: other test runs may share the Redis broker and run workers of their own.
    settings.AION_ROUTER_TASK_QUEUE = f"router-test-{uuid.uuid4().hex[:12]}"
    policy_file.write(basic_policy(module_host.url, provider.url, route="local"))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    worker = start_celery_worker("--hostname", "router-reload@%h", "-Q", settings.AION_ROUTER_TASK_QUEUE)
    output = ""
    try:
        first, _ = services.submit_task({"intent": "chat.answer"}, actor=ACTOR, tenant_id="acme")
        first = wait_final(first.id)
        assert (first.status, first.target, first.policy_revision) == ("OK", "local-a", 1)
        assert len(module_host.requests) == 1

        policy_file.write(basic_policy(module_host_b.url, provider.url, route="local"))
        revision, created = services.reload_policy(actor=ACTOR, tenant_id="acme")
        assert created and revision.number == 2

        second, _ = services.submit_task({"intent": "chat.answer"}, actor=ACTOR, tenant_id="acme")
        second = wait_final(second.id)
        assert worker.poll() is None, "the worker must not have restarted"
        assert (second.status, second.policy_revision) == ("OK", 2)
        assert len(module_host_b.requests) == 1 and len(module_host.requests) == 1
        assert module_host_b.requests[0].headers["idempotency-key"] == str(second.id)
    finally:
        output = stop(worker)
    assert "Traceback" not in output, output
