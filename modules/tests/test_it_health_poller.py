"""The health poller (beat job ``modules.poll_health``) against real local HTTP module hosts: up, slow, failing, down.

Clock time of each poll is injected (``now=``); "slow" and "timeout" are real delays of a real server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aion.metrics import render_metrics
from aion.models import AuditRecord
from aion.testing.module_releases import register
from aion.testing.services import free_port
from modules import health, services, tasks
from modules.models import Module, ModuleHealthCheck


@pytest.fixture(autouse=True)
def fast_health_settings(settings):
    # Generous margins: the CI machine is shared, so an "ok" answer may take a while.
    settings.AION_MODULES_HEALTH_TIMEOUT_SECONDS = 1.5
    settings.AION_MODULES_HEALTH_SLOW_SECONDS = 0.6
    settings.AION_MODULES_HEALTH_WINDOW = 3
    settings.AION_MODULES_DOWN_AFTER_FAILURES = 3


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def tick(self):
        self.now += timedelta(seconds=30)
        return self.now


def poll(clock):
    [result] = health.poll_health(now=clock.tick())
    return result


def module():
    return Module.objects.get(name="summarizer")


def module_up_line():
    text = render_metrics().decode()
    return [line for line in text.splitlines() if line.startswith("module_up{")]


def test_up_slow_failing_down_and_recovery(db, key, make_http_server):
    host = make_http_server()
    register(key, endpoint=host.url("").rstrip("/"))
    clock = Clock()

    host.respond(200, {"status": "ok"})
    assert poll(clock).health == "up"
    assert host.requests[-1].path == "/healthz"
    assert module_up_line() == ['module_up{name="summarizer",pool="cpu",version="1.0.0"} 1.0']

    host.delay = 0.8  # slower than AION_MODULES_HEALTH_SLOW_SECONDS, inside the timeout
    result = poll(clock)
    assert result.probe.outcome == "slow"
    assert result.health == "degraded"
    host.delay = 0

    host.respond(500, {"error": "boom"}, times=3)
    assert [poll(clock).health for _ in range(3)] == ["degraded", "degraded", "down"]
    down = module()
    assert down.consecutive_failures == 3
    assert down.last_health_error == "HTTP 500"
    assert down.health_checked_at == clock.now
    assert module_up_line() == ['module_up{name="summarizer",pool="cpu",version="1.0.0"} 0.0']

    # Recovery: one good answer is not enough while the window still holds failures.
    assert [poll(clock).health for _ in range(3)] == ["degraded", "degraded", "up"]
    recovered = module()
    assert recovered.flap_count == 4  # up->degraded, degraded->down, down->degraded, degraded->up
    assert AuditRecord.objects.filter(action="module.health_changed").count() == 5  # incl. unknown->up
    checks = list(ModuleHealthCheck.objects.order_by("checked_at").values_list("outcome", "http_status"))
    assert checks[0] == ("ok", 200) and checks[2] == ("failed", 500)
    assert "module_health_check_latency_seconds_count" in render_metrics().decode()


def test_a_timeout_and_a_refused_connection_fail(db, key, make_http_server, settings):
    settings.AION_MODULES_HEALTH_TIMEOUT_SECONDS = 0.3
    host = make_http_server()
    host.delay = 1.0  # longer than the 0.3 s timeout
    register(key, endpoint=host.url("").rstrip("/"))
    register(key, name="ghost", endpoint=f"http://127.0.0.1:{free_port()}")
    results = {r.module.name: r for r in health.poll_health(now=timezone.now())}
    assert results["summarizer"].probe.outcome == "failed"
    assert "timed out" in results["summarizer"].probe.error
    assert results["ghost"].probe.outcome == "failed"
    assert results["ghost"].probe.http_status is None


def test_the_ssrf_guard_still_applies(db, key, make_http_server, settings):
    host = make_http_server()
    register(key, name="metadata", endpoint="http://169.254.169.254")
    register(key, endpoint=host.url("").rstrip("/"))
    settings.AION_MODULES_ALLOW_PRIVATE_NETWORKS = False
    results = {r.module.name: r for r in health.poll_health(now=timezone.now())}
    assert "SSRF" in results["metadata"].probe.error
    assert "SSRF" in results["summarizer"].probe.error  # loopback refused once private networks are off
    assert host.requests == []


def test_the_beat_task_polls_only_enabled_active_modules(db, key, make_http_server):
    host = make_http_server()
    register(key, endpoint=host.url("").rstrip("/"))
    register(key, name="inactive", activate=False, endpoint=host.url("").rstrip("/"))
    assert tasks.poll_health() == 1
    assert len(host.requests) == 1
    services.disable_module(module(), actor="system:test", reason="maintenance")
    assert tasks.poll_health() == 0


def test_history_is_bounded(db, key, make_http_server, settings):
    settings.AION_MODULES_HEALTH_HISTORY = 5
    host = make_http_server()
    register(key, endpoint=host.url("").rstrip("/"))
    clock = Clock()
    for _ in range(8):
        poll(clock)
    assert ModuleHealthCheck.objects.count() == 5
    assert ModuleHealthCheck.objects.order_by("-checked_at").first().checked_at == clock.now


def test_a_new_version_starts_its_health_over(db, key, make_http_server):
    host = make_http_server()
    register(key, endpoint=host.url("").rstrip("/"))
    host.respond(503, times=3)
    clock = Clock()
    for _ in range(3):
        poll(clock)
    assert module().health == "down"
    register(key, "1.1.0", endpoint=host.url("").rstrip("/"))
    assert module().health == "unknown"
    assert poll(clock).health == "up"
