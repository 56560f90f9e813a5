"""Router test fixtures: a policy file under the test's tmp dir, and scripted module/provider hosts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aion.testing.http import LocalHTTPServer
from aion.testing.router_targets import PolicyFile, ScriptedTarget
from router.policy_store import forget_cached_policy


@pytest.fixture(autouse=True)
def fresh_runtime_figures(settings: Any) -> None:
    """Tests add samples and route right away: no per-process caching of the runtime view."""
    settings.AION_ROUTER_STATS_CACHE_SECONDS = 0


@pytest.fixture()
def policy_file(tmp_path: Path, settings: Any) -> Iterator[PolicyFile]:
    path = tmp_path / "router.yml"
    settings.AION_ROUTER_POLICY_PATH = str(path)
    forget_cached_policy()
    yield PolicyFile(path)
    forget_cached_policy()


@pytest.fixture()
def module_host(make_http_server: Callable[[], LocalHTTPServer]) -> ScriptedTarget:
    return ScriptedTarget(make_http_server(), "module")


@pytest.fixture()
def module_host_b(make_http_server: Callable[[], LocalHTTPServer]) -> ScriptedTarget:
    return ScriptedTarget(make_http_server(), "module")


@pytest.fixture()
def provider(make_http_server: Callable[[], LocalHTTPServer]) -> ScriptedTarget:
    return ScriptedTarget(make_http_server(), "provider")
