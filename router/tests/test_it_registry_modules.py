"""Registry modules as router targets: real modules registered through ``modules.services``.

Each module is registered with a manifest signed by a Cosign key pair generated in the test (the
modules app's own test helpers), its health is recorded by the modules app's real poller probing
real local HTTP servers, and the router reads the registry through ``modules.selectors``. Nothing of
our own code is replaced.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, client_with_roles
from aion.testing.module_releases import CosignKey, KeyRingFixture, register
from modules import services as module_services
from modules.models import Module
from modules.selectors import active_module_targets
from router import services
from router.models import Task

pytestmark = pytest.mark.django_db

POLICY = """
version: 1
settings: {{seed: 7, timeout_ms: 1500, registry_modules: true}}
targets:
  - {{name: static-local, kind: module, endpoint: "{static}"}}
  - {{name: cloud, kind: provider, base_url: "http://127.0.0.1:9", model: m, price_per_1k_tokens: 0.5}}
rules:
  - name: summaries
    match: {{intent: "summarize.*"}}
    choice: {{route: local, strategy: priority, candidates: ["module:*"], fallbacks: [static-local]}}
  - name: named-embedder
    match: {{intent: "embed.*"}}
    choice: {{route: hybrid, strategy: priority, candidates: ["module:embedder", cloud]}}
default: {{route: hybrid, strategy: priority, candidates: [cloud]}}
"""


@pytest.fixture()
def signer(tmp_path: Any, settings: Any) -> CosignKey:
    """A Cosign key pair made in the test and trusted through AION_COSIGN_PUBLIC_KEYS."""
    return KeyRingFixture(tmp_path, settings).new("router-tests")


@pytest.fixture()
def owner():
    return client_with_roles([Role.ROUTER_ADMIN])


def write_policy(policy_file: Any, static: str = "http://127.0.0.1:9") -> None:
    policy_file.write(POLICY.format(static=static))


def dry_run(client: Any, intent: str, **task: Any) -> dict[str, Any]:
    response = client.post("/v1/router/route", {"intent": intent, "params": {"text": "hi"}, **task}, format="json")
    assert response.status_code == 200, response.json()
    return dict(response.json())


def test_registry_modules_are_local_targets_for_their_intents(owner, policy_file, signer):
    write_policy(policy_file)
    register(signer, name="summarizer", intents=("summarize.*",), endpoint="http://10.0.0.5:8080")
    register(signer, name="embedder", intents=("embed.*",), endpoint="http://10.0.0.6:8080")
    register(signer, name="foreign", intents=("summarize.*",), tenant=OTHER_TENANT)  # another tenant's module

    summary = dry_run(owner, "summarize.text", sla={"privacy": "local-only"})
    assert (summary["route"], summary["target"], summary["chosen_by"]) == ("local", "module:summarizer", "rule:summaries")
    # module:* only brings modules whose intents match, of the caller's tenant; the policy's fallback follows
    assert summary["fallbacks"] == ["static-local"]

    embed = dry_run(owner, "embed.query")
    assert embed["target"] == "module:embedder" and embed["fallbacks"] == ["cloud"]
    # a registry module is a zero-priced local target: still chosen for a local-only task
    assert dry_run(owner, "embed.query", sla={"privacy": "local-only"})["fallbacks"] == []

    targets = {t["name"]: t for t in owner.get("/v1/router/targets").json()["targets"]}
    assert {"module:summarizer", "module:embedder"} <= targets.keys() and "module:foreign" not in targets
    assert (targets["module:summarizer"]["route"], targets["module:summarizer"]["price_per_1k_tokens"]) == ("local", 0.0)

    # a disabled module leaves the registry and the router falls back to the policy's own target
    module_services.disable_module(Module.objects.get(tenant_id=TENANT, name="summarizer"), actor="system:tests", reason="retired")
    assert dry_run(owner, "summarize.text")["target"] == "static-local"


def test_priority_skips_a_module_the_health_poller_found_down(owner, policy_file, signer, make_http_server, settings):
    settings.AION_MODULES_DOWN_AFTER_FAILURES = 2
    write_policy(policy_file)
    broken, healthy = make_http_server(), make_http_server()
    broken.default = (503, {"error": "crashed"}, {})
    # "alpha" sorts first, so priority picks it while its health is unknown or up
    register(signer, name="alpha", intents=("summarize.*",), endpoint=broken.url("").rstrip("/"))
    register(signer, name="beta", intents=("summarize.*",), endpoint=healthy.url("").rstrip("/"))
    first = dry_run(owner, "summarize.text")
    assert first["target"] == "module:alpha" and first["fallbacks"] == ["static-local", "module:beta"]

    for _ in range(2):
        module_services.poll_health(tenant_id=TENANT, now=timezone.now())
    assert {t.name: t.health for t in active_module_targets(TENANT)} == {"alpha": "down", "beta": "up"}
    assert [r.path for r in broken.requests] == ["/healthz", "/healthz"]

    after = dry_run(owner, "summarize.text")
    assert after["target"] == "module:beta"
    assert "module:alpha" not in after["fallbacks"]  # a down module is not even a last resort


def test_a_task_runs_end_to_end_on_a_registered_module_host(owner, policy_file, signer, module_host, module_host_b, settings):
    """Submit over the API, execute as the worker does, read the result over the API."""
    settings.AION_MODULES_DOWN_AFTER_FAILURES = 1
    write_policy(policy_file, static=module_host_b.url)
    module_host.tokens = 17
    register(signer, name="summarizer", intents=("summarize.*",), endpoint=module_host.url)
    module_services.poll_health(tenant_id=TENANT, now=timezone.now())  # the module host answers its /healthz
    assert active_module_targets(TENANT)[0].health == "up"

    response = owner.post("/v1/tasks", {"intent": "summarize.text", "params": {"text": "long"}}, format="json")
    assert response.status_code == 202, response.json()
    task_id = response.json()["id"]
    assert services.execute_task(task_id) == "OK"

    body = owner.get(f"/v1/tasks/{task_id}").json()
    assert body["status"] == "OK"
    assert body["engine"]["route"] == "local" and body["engine"]["target"] == "module:summarizer"
    assert body["usage"]["tokens"] == 17 and body["output"] == {"echo": {"text": "long"}, "task_id": task_id}
    invoke = [r for r in module_host.requests if r.path == "/v1/invoke"]
    assert len(invoke) == 1 and invoke[0].method == "POST"
    assert invoke[0].json() == {"task_id": task_id, "intent": "summarize.text", "params": {"text": "long"}}
    assert invoke[0].headers["idempotency-key"] == task_id
    assert module_host_b.requests == []

    # the registered host fails: the task falls back to the policy's static module, in order
    module_host.mode = "fail"
    task_id = owner.post("/v1/tasks", {"intent": "summarize.text", "params": {"text": "again"}}, format="json").json()["id"]
    assert services.execute_task(task_id) == "OK"
    task = Task.objects.get(pk=task_id)
    assert [(a["target"], a["outcome"]) for a in task.attempts] == [("module:summarizer", "error"), ("static-local", "ok")]
