"""A policy reload is seen by a separate, already running Celery worker process without a restart.

The worker is a real subprocess consuming the configured broker and the test database.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.utils import timezone

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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_task_survives_a_worker_killed_mid_call_and_the_target_runs_it_once(policy_file, module_host, provider, settings):
    """Worker 1 is SIGKILLed during the target call; the lease expires, the sweeper re-queues, worker 2 finishes.

    The module host honours Idempotency-Key the way the contract asks hosts to: a repeated key
    gets the stored result instead of a second execution.
    """
    import signal
    import threading

    settings.AION_ROUTER_TASK_QUEUE = f"router-test-{uuid.uuid4().hex[:12]}"
    executions: dict[str, dict] = {}
    lock = threading.Lock()

    def idempotent_host(request):
        key = request.headers["idempotency-key"]
        with lock:
            if key in executions:
                return 200, executions[key], {}
            executions[key] = {"output": "done once", "usage": {"tokens": 3, "cost_usd": 0}}
        time.sleep(2.0)  # the work; worker 1 dies meanwhile
        return 200, executions[key], {}

    module_host.server.handler = idempotent_host
    policy_file.write(basic_policy(module_host.url, provider.url, route="local", timeout_ms=3000))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    queue = settings.AION_ROUTER_TASK_QUEUE
    first = start_celery_worker("--hostname", "router-w1@%h", "-Q", queue, AION_ROUTER_LEASE_MARGIN_SECONDS="0")
    second = None
    try:
        task, _ = services.submit_task({"intent": "chat.answer"}, actor=ACTOR, tenant_id="acme")
        deadline = time.monotonic() + 60
        while not module_host.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert module_host.requests, "worker 1 never called the module host"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert Task.objects.get(pk=task.id).status == "RUNNING"
        second = start_celery_worker("--hostname", "router-w2@%h", "-Q", queue, AION_ROUTER_LEASE_MARGIN_SECONDS="0")
        while Task.objects.get(pk=task.id).lease_expires_at > timezone.now():
            time.sleep(0.2)
        assert services.requeue_stale_tasks() == 1
        task = wait_final(task.id)
    finally:
        output = stop(second) if second else ""
        stop(first)
    assert (task.status, task.output, task.runs) == ("OK", "done once", 2), output
    keys = [r.headers["idempotency-key"] for r in module_host.requests]
    assert keys == [str(task.id), str(task.id)]
    assert len(executions) == 1
