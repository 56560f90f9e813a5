"""Task execution against real local HTTP servers: a module host and an OpenAI-compatible provider.

Covers the happy paths, the fallback order, timeouts, cancel, re-delivery after a worker loss
(the task id is the Idempotency-Key the target sees), runtime samples, events and metrics.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aion.auth.principal import system_principal
from aion.testing.factories import api_client
from aion.testing.router_targets import basic_policy, events
from aion.topics import METRICS_RUNTIME, ROUTER_DECISIONS, TASKS_LIFECYCLE
from router import services
from router.models import RuntimeSample, Task

pytestmark = pytest.mark.django_db

ACTOR = system_principal("acme", "tests")


def submit(**task) -> Task:
    body = {"intent": "chat.answer", "params": {"prompt": "hi"}, **task}
    return services.submit_task(body, actor=ACTOR, tenant_id="acme")[0]


def run(task: Task) -> Task:
    services.execute_task(str(task.id))
    task.refresh_from_db()
    return task


def test_a_module_host_task_runs_ok_with_usage_and_the_invoke_contract(policy_file, module_host, provider):
    module_host.tokens, module_host.cost_usd = 42, 0.0
    policy_file.write(basic_policy(module_host.url, provider.url))
    task = run(submit(params={"prompt": "hi", "n": 1}))
    assert task.status == "OK"
    assert task.output == {"echo": {"prompt": "hi", "n": 1}, "task_id": str(task.id)}
    assert (task.route, task.target, task.tokens) == ("local", "local-a", 42)
    request = module_host.requests[0]
    assert request.method == "POST" and request.path == "/v1/invoke"
    assert request.json() == {"task_id": str(task.id), "intent": "chat.answer", "params": {"prompt": "hi", "n": 1}}
    assert request.headers["idempotency-key"] == str(task.id)
    assert provider.requests == []
    state = services.task_state(task)
    assert state["usage"]["latency_ms"] > 0 and state["error"] is None


def test_a_provider_task_uses_chat_completions_with_the_api_key_and_prices_tokens(policy_file, module_host, provider, monkeypatch):
    monkeypatch.setenv("ROUTER_TEST_PROVIDER_KEY", "sk-test-123")
    provider.tokens = 100
    policy_file.write(basic_policy(module_host.url, provider.url))
    task = run(submit(preferred_engine="api"))
    assert task.status == "OK" and task.target == "cloud" and task.route == "api"
    assert task.output == "hello from provider"
    assert task.cost_usd == Decimal("0.050000")  # 100 tokens at 0.5 USD per 1k
    request = provider.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    assert request.json()["model"] == "gpt-test" and request.json()["messages"][-1] == {"role": "user", "content": "hi"}
    assert module_host.requests == []


def test_a_failing_target_falls_back_in_the_policy_order(policy_file, module_host, module_host_b, provider):
    extra = f'  - {{name: local-b, kind: module, endpoint: "{module_host_b.url}"}}'
    policy_file.write(basic_policy(module_host.url, provider.url, extra=extra, fallbacks="[local-b, cloud]"))
    module_host.mode = "fail"
    module_host_b.mode = "garbage"
    task = run(submit())
    assert task.status == "OK" and task.target == "cloud"
    assert [(a["target"], a["outcome"], a["error_code"]) for a in task.attempts] == [
        ("local-a", "error", "http_503"),
        ("local-b", "error", "bad_response"),
        ("cloud", "ok", ""),
    ]
    assert "fell back to cloud" in task.reason
    assert [s.outcome for s in RuntimeSample.objects.order_by("id")] == ["error", "error", "ok"]


def test_all_targets_failing_is_an_error_with_code_and_message(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    module_host.mode = provider.mode = "fail"
    task = run(submit())
    assert task.status == "ERROR"
    assert services.task_state(task)["error"] == {"code": "http_503", "message": '{"error": "overloaded"}'}


def test_slow_targets_time_out(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url, timeout_ms=200))
    module_host.mode = provider.mode = "slow"
    module_host.slow_seconds = provider.slow_seconds = 0.6
    task = run(submit())
    assert task.status == "TIMEOUT"
    assert [a["outcome"] for a in task.attempts] == ["timeout", "timeout"]
    assert task.error_code == "timeout"


def test_local_only_tasks_never_call_the_provider_even_when_local_fails(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url, fallbacks="[cloud]"))
    module_host.mode = "fail"
    task = run(submit(sla={"privacy": "local-only"}))
    assert task.status == "ERROR"
    assert provider.requests == []
    assert [a["target"] for a in task.attempts] == ["local-a"]


def test_a_canceled_task_is_not_run(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    task = submit()
    services.cancel_task(task, actor=ACTOR)
    assert run(task).status == "CANCELED"
    assert module_host.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_cancel_during_the_call_wins_over_the_late_result(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    task = submit()

    def cancel_then_answer(request):
        Task.objects.filter(pk=task.pk).update(status="CANCELED")  # the user cancels while the host works
        return 200, {"output": "late", "usage": {"tokens": 1}}, {}

    module_host.server.handler = cancel_then_answer
    assert run(task).status == "CANCELED"
    assert task.output is None


def test_redelivery_after_a_worker_loss_reruns_with_the_same_idempotency_key(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    task = submit()
    # A worker claimed it and died: RUNNING with a lease that has expired.
    Task.objects.filter(pk=task.pk).update(status="RUNNING", runs=1, lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.requeue_stale_tasks() == 1
    assert run(task).status == "OK"
    assert task.runs == 2
    assert [r.headers["idempotency-key"] for r in module_host.requests] == [str(task.id)]
    # A second delivery of the same message does nothing: the task is final.
    assert services.execute_task(str(task.id)) == "OK"
    assert len(module_host.requests) == 1


def test_a_live_lease_means_another_worker_has_it(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url))
    task = submit()
    Task.objects.filter(pk=task.pk).update(status="RUNNING", lease_expires_at=timezone.now() + timedelta(minutes=5))
    assert services.execute_task(str(task.id)) == "busy"
    assert module_host.requests == []


def test_samples_decisions_lifecycle_events_and_metrics(policy_file, module_host, provider):
    from aion.rbac import Role
    from aion.testing.factories import client_with_roles

    policy_file.write(basic_policy(module_host.url, provider.url, fallbacks="[cloud]"))
    module_host.mode = "fail"
    task = run(submit())
    samples = events(METRICS_RUNTIME)
    assert [(s["data"]["target"], s["data"]["outcome"]) for s in samples] == [("local-a", "error"), ("cloud", "ok")]
    assert samples[0]["type"] == "router.sample" and samples[1]["data"]["latency_seconds"] > 0
    decision = events(ROUTER_DECISIONS)[0]
    assert decision["data"]["task_id"] == str(task.id) and decision["data"]["target"] == "local-a"
    assert decision["data"]["fallbacks"] == ["cloud"]
    lifecycle = events(TASKS_LIFECYCLE)
    assert [(e["type"], e["data"]["state"]) for e in lifecycle] == [
        ("task.pending", "PENDING"),
        ("task.running", "RUNNING"),
        ("task.ok", "OK"),
    ]
    assert {e["data"]["task_id"] for e in lifecycle} == {str(task.id)}
    Task.objects.create(tenant_id="acme", intent="waiting")
    text = api_client().get("/metrics").content.decode()
    assert 'router_task_latency_seconds_count{route="api",target="cloud"}' in text
    assert 'router_decisions_total{route="local",strategy="priority"}' in text
    assert 'router_queue_depth{status="PENDING"} 1.0' in text
    assert 'router_budget_spent_usd{tenant="acme"} 0.05' in text
    # the rolling stats feed the targets endpoint
    body = client_with_roles([Role.ROUTER_ADMIN]).get("/v1/router/targets").json()
    cloud = next(t for t in body["targets"] if t["name"] == "cloud")
    assert cloud["samples"] == 1 and cloud["error_rate"] == 0.0 and cloud["p95_ms"] > 0
    assert body["budget"]["spent_today_usd"] == 0.05


def test_budget_exhausted_at_execution_time_ends_the_task_without_a_call(policy_file, module_host, provider):
    policy_file.write(basic_policy(module_host.url, provider.url, route="api", budget="budgets: {default_daily_usd: 0.01}"))
    task = submit()
    RuntimeSample.objects.create(tenant_id="acme", target="cloud", route="api", outcome="ok", latency_ms=1, cost_usd=Decimal("0.02"))
    assert run(task).status == "ERROR"
    assert task.error_code == "budget_exhausted"
    assert provider.requests == []


def test_private_network_targets_are_refused_when_the_router_may_not_reach_them(policy_file, module_host, provider, settings):
    settings.AION_ROUTER_ALLOW_PRIVATE_NETWORKS = False
    policy_file.write(basic_policy(module_host.url, provider.url))
    task = run(submit())
    assert task.status == "ERROR" and {a["error_code"] for a in task.attempts} == {"unsafe_destination"}
    assert module_host.requests == []


def test_a_provider_key_can_come_from_vault_kv_v2(policy_file, module_host, provider, make_http_server, settings):
    """No Vault binary runs here: a local HTTP server answers the KV v2 read as Vault would (a fake Vault)."""
    vault = make_http_server()
    vault.default = (200, {"data": {"data": {"openai_api_key": "sk-from-vault"}, "metadata": {"version": 3}}}, {})
    settings.VAULT_ADDR, settings.VAULT_TOKEN = vault.url("").rstrip("/"), "vault-test-token"
    extra = (
        f'  - {{name: vaulted, kind: provider, base_url: "{provider.url}", model: m, price_per_1k_tokens: 0,'
        ' api_key_vault: "omertaos/router#openai_api_key"}'
    )
    text = basic_policy(module_host.url, provider.url, extra=extra).replace("candidates: [local-a, cloud]", "candidates: [vaulted]")
    policy_file.write(text)
    task = run(submit())
    assert task.status == "OK" and task.target == "vaulted"
    assert vault.requests[0].path == "/v1/secret/data/omertaos/router"
    assert vault.requests[0].headers["x-vault-token"] == "vault-test-token"
    assert provider.requests[0].headers["authorization"] == "Bearer sk-from-vault"


def test_a_choice_timeout_overrides_the_target_and_policy_timeouts(policy_file, module_host, provider):
    text = basic_policy(module_host.url, provider.url, route="local", timeout_ms=5000)
    text = text.replace(f"endpoint: {module_host.url}", f"endpoint: {module_host.url}\n    timeout_ms: 4000")
    text = text.replace("  fallbacks: []", "  fallbacks: []\n  timeout_ms: 200")
    policy_file.write(text)
    module_host.mode, module_host.slow_seconds = "slow", 0.6
    task = run(submit())
    assert task.status == "TIMEOUT" and task.latency_ms < 3000
