"""A policy reload is seen by a separate, already running Celery worker process without a restart.

The worker is a real subprocess consuming the configured broker and the test database.
"""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from aion.auth.principal import system_principal
from aion.testing.processes import start_celery_worker, stop
from aion.testing.router_targets import basic_policy
from aion.testing.waits import wait_until
from router import services
from router.models import Task

ACTOR = system_principal("acme", "tests")


def wait_final(task_id, seconds: float = 60) -> Task:
    def finished() -> Task | None:
        task = Task.objects.get(pk=task_id)
        return task if task.status in ("OK", "ERROR", "TIMEOUT", "CANCELED") else None

    return wait_until(finished, timeout=seconds, what=f"task {task_id} finishing", interval=0.2)


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
    worker_1_killed = threading.Event()

    def idempotent_host(request):
        key = request.headers["idempotency-key"]
        with lock:
            if key in executions:
                return 200, executions[key], {}
            executions[key] = {"output": "done once", "usage": {"tokens": 3, "cost_usd": 0}}
        worker_1_killed.wait(30)  # the work outlasts worker 1, which dies mid-call
        return 200, executions[key], {}

    module_host.server.handler = idempotent_host
    policy_file.write(basic_policy(module_host.url, provider.url, route="local", timeout_ms=3000))
    services.reload_policy(actor=ACTOR, tenant_id="acme")
    queue = settings.AION_ROUTER_TASK_QUEUE
    first = start_celery_worker("--hostname", "router-w1@%h", "-Q", queue, AION_ROUTER_LEASE_MARGIN_SECONDS="0")
    second = None
    try:
        task, _ = services.submit_task({"intent": "chat.answer"}, actor=ACTOR, tenant_id="acme")
        wait_until(lambda: module_host.requests, timeout=60, what="worker 1 calling the module host")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        worker_1_killed.set()
        assert Task.objects.get(pk=task.id).status == "RUNNING"
        second = start_celery_worker("--hostname", "router-w2@%h", "-Q", queue, AION_ROUTER_LEASE_MARGIN_SECONDS="0")
        # The lease is the call timeout (3 s) plus a zero margin: it expires within a few seconds of the claim.
        wait_until(lambda: Task.objects.get(pk=task.id).lease_expires_at <= timezone.now(), timeout=30, what="worker 1's lease expiring")
        assert services.requeue_stale_tasks() == 1
        task = wait_final(task.id)
    finally:
        output = stop(second) if second else ""
        stop(first)
    assert (task.status, task.output, task.runs) == ("OK", "done once", 2), output
    keys = [r.headers["idempotency-key"] for r in module_host.requests]
    assert keys == [str(task.id), str(task.id)]
    assert len(executions) == 1
