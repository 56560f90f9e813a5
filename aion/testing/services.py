"""Test access to real services. With CI=true a missing service fails the test; locally it skips."""

from __future__ import annotations

import os
import socket
from typing import NoReturn
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(name: str, why: str, *, module_level: bool = False) -> NoReturn:
    """Fail with CI=true, skip otherwise; MODULE_LEVEL when called at a test module's top (collection time)."""
    message = f"{name} is required by this test but unavailable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: failing, not skipping)")
    pytest.skip(message, allow_module_level=module_level)


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the suite runs against: REDIS_URL, else the machine's 127.0.0.1:6379 (database 0)."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parsed = urlparse(url)
    if not tcp_open(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        service_missing("Redis", f"nothing answers at {url}")
    return url


@pytest.fixture()
def require_postgres(db: None) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL", "DATABASE_URL does not select PostgreSQL in this run")
