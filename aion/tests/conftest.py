"""Gateway test fixtures: isolated limiter/idempotency key spaces and a stoppable TCP proxy to Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from django.test import override_settings

from aion.testing.redis_proxy import TcpProxy, delete_prefix, redis_db_url


@pytest.fixture()
def gateway_isolation() -> Iterator[str]:
    """Unique rate-limit and idempotency key prefixes, so buckets never leak between tests or runs."""
    from django.conf import settings

    prefix = f"gw-test-{uuid.uuid4().hex[:12]}"
    with override_settings(AION_RATE_LIMIT_KEY_PREFIX=f"{prefix}:rl", AION_IDEMPOTENCY_KEY_PREFIX=f"{prefix}:idem"):
        yield prefix
    # When the run uses Redis (REDIS_URL), remove this test's keys (and only them; never a flush).
    for url in {settings.REDIS_URL, settings.AION_IDEMPOTENCY_REDIS_URL} - {None, ""}:
        delete_prefix(str(url), prefix)


@pytest.fixture()
def redis_cleanup(redis_url: str) -> Iterator[list[str]]:
    """Deletes (only) the keys under the prefixes a test registers, on databases 0-3."""
    import redis

    prefixes: list[str] = []
    yield prefixes
    for db in range(4):
        client = redis.Redis.from_url(redis_db_url(redis_url, db))
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000)) + list(client.scan_iter(match=f"{{{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        client.close()


@pytest.fixture()
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    parsed = urlparse(redis_url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture()
def redis_cluster_node(tmp_path: Any) -> Iterator[str]:
    """A real one-node Redis Cluster (redis-server in cluster mode owning all 16384 slots); yields its URL.

    One node is enough to prove slot rules: Cluster refuses a multi-key command whose keys hash to different
    slots (CROSSSLOT) even when one node serves them all.
    """
    import shutil
    import subprocess
    import time

    import redis

    from aion.testing.services import free_port, service_missing, tcp_open

    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server", "the binary is not on PATH (needed to start a cluster-mode node)")
        raise AssertionError("unreachable")
    port = free_port()
    options = {"port": port, "bind": "127.0.0.1", "cluster-enabled": "yes", "cluster-port": free_port(), "dir": tmp_path}
    options |= {"cluster-config-file": tmp_path / "nodes.conf", "save": "", "appendonly": "no"}
    process = subprocess.Popen(
        [binary, *(part for name, value in options.items() for part in (f"--{name}", str(value)))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not tcp_open("127.0.0.1", port, timeout=0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                service_missing("redis-server (cluster mode)", f"it did not open port {port}")
            time.sleep(0.05)
        client = redis.Redis(port=port)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                service_missing("redis-server (cluster mode)", "the cluster did not reach state ok")
            time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(5)


@pytest.fixture()
def settings_from_env(monkeypatch: Any, tmp_path: Any) -> Any:
    """Executes aion/settings.py against given variables (outside test mode) and returns its names."""
    import os
    import runpy

    from django.conf import settings

    def load(**variables: str) -> dict[str, Any]:
        for name in list(os.environ):
            if name.startswith(("AION_RATE_LIMIT", "AION_IDEMPOTENCY")) or name in ("REDIS_URL", "AION_TESTING"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("AION_VAR_DIR", str(tmp_path))
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(settings.BASE_DIR / "aion" / "settings.py"))

    return load
