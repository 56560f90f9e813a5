"""Router integration: active modules are ``local`` targets, and a module the poller found down is skipped by ``priority``.

Real module registry, real health polls against local HTTP servers, real router policy and decision code.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from aion.testing.factories import TENANT
from aion.testing.module_releases import register
from modules import health as module_health
from modules import services
from modules.models import Module
from modules.selectors import active_module_targets
from router.policy_store import forget_cached_policy
from router.services import route_task

POLICY = """
version: 1
settings: {seed: 7, registry_modules: true}
targets:
  - {name: static-fallback, kind: module, endpoint: "http://127.0.0.1:9"}
rules:
  - name: summaries
    match: {intent: ["summarize.*"]}
    choice: {route: local, strategy: priority, candidates: ["module:*"], fallbacks: [static-fallback]}
default: {strategy: priority, candidates: [static-fallback]}
"""


@pytest.fixture()
def router_policy(tmp_path, settings):
    path = tmp_path / "router.yml"
    path.write_text(POLICY)
    settings.AION_ROUTER_POLICY_PATH = str(path)
    settings.AION_ROUTER_STATS_CACHE_SECONDS = 0  # the router caches its runtime view for 1 s by default
    forget_cached_policy()
    yield
    forget_cached_policy()


def test_a_down_module_is_not_chosen_by_priority(db, key, make_http_server, settings, router_policy):
    settings.AION_MODULES_DOWN_AFTER_FAILURES = 2
    broken, healthy = make_http_server(), make_http_server()
    broken.default = (503, {"error": "crashed"}, {})
    # "alpha" sorts first, so priority would pick it while it is healthy.
    register(key, name="alpha", endpoint=broken.url("").rstrip("/"))
    register(key, name="beta", endpoint=healthy.url("").rstrip("/"))

    task = {"intent": "summarize.text", "params": {"prompt": "hi"}, "seed": "s1"}
    assert route_task(task, tenant_id=TENANT).target == "module:alpha"  # unknown health is not down

    for _ in range(2):
        module_health.poll_health(now=timezone.now())
    health = {t.name: t.health for t in active_module_targets(TENANT)}
    assert health == {"alpha": "down", "beta": "up"}

    decision = route_task(task, tenant_id=TENANT)
    assert decision.target == "module:beta"
    assert "module:alpha" not in [t.name for t in decision.targets]
    assert decision.route == "local"


def test_a_disabled_module_is_not_a_target(db, key, router_policy):
    register(key, name="alpha")
    services.disable_module(Module.objects.get(name="alpha"), actor="system:test", reason="key rotated")
    assert active_module_targets(TENANT) == []
    assert route_task({"intent": "summarize.text", "params": {}}, tenant_id=TENANT).target == "static-fallback"
