"""Gateway test fixtures: isolated limiter/idempotency key spaces and a stoppable TCP proxy to Redis."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from django.test import override_settings


@pytest.fixture()
def gateway_isolation() -> Iterator[str]:
    """Unique rate-limit and idempotency key prefixes, so buckets never leak between tests or runs."""
    from django.conf import settings

    prefix = f"gw-test-{uuid.uuid4().hex[:12]}"
    with override_settings(AION_RATE_LIMIT_KEY_PREFIX=f"{prefix}:rl", AION_IDEMPOTENCY_KEY_PREFIX=f"{prefix}:idem"):
        yield prefix
    # When the run uses Redis (REDIS_URL), remove this test's keys (and only them; never a flush).
    for url in {settings.REDIS_URL, settings.AION_IDEMPOTENCY_REDIS_URL} - {None, ""}:
        _delete_prefix(str(url), prefix)


def _delete_prefix(url: str, prefix: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
        # Rate-limit buckets start with a Cluster hash tag: "{<prefix>:rl:<route class>}:...".
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000)) + list(client.scan_iter(match=f"{{{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


def redis_db_url(url: str, db: int) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}/{db}"


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


class TcpProxy:
    """A real TCP relay to Redis that a test can cut (connections killed mid-run) and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.connections += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        """Closes the listener and kills every open connection (Redis 'goes away')."""
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            for sock in self.connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.connections.clear()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


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
