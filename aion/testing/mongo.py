"""Test fixture: a MongoDB wire-protocol server on 127.0.0.1 (``nx-27017``, stored on SQLite).

nx-27017 is a stand-in for MongoDB: pymongo talks to it over the real wire
protocol and its TTL indexes really expire documents, but it is not MongoDB
(for instance it acknowledges ``collMod`` without applying it). Tests that use
it say so in their docstring. ``mongo_url`` starts one server per test session;
each test gets its own database name from ``mongo_database_name``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aion.testing.services import free_port, service_missing, tcp_open


def _nx_command() -> list[str] | None:
    binary = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    return [binary] if Path(binary).exists() else None


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """mongodb://127.0.0.1:<free port> served by a fresh nx-27017 process (stopped at session end)."""
    command = _nx_command()
    if command is None:
        service_missing("MongoDB (nx-27017)", "the nx-27017 package is not installed (requirements-dev.txt)")
    assert command is not None
    folder = tempfile.mkdtemp(prefix="aion-mongo-")
    port = free_port()
    process = subprocess.Popen(
        [
            *command,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            folder,
            "--pid-file",
            f"{folder}/nx.pid",
            "--log-file",
            f"{folder}/nx.log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not tcp_open("127.0.0.1", port, timeout=0.2):
        if process.poll() is not None:
            break
        time.sleep(0.1)
    if not tcp_open("127.0.0.1", port, timeout=0.2):
        process.kill()
        service_missing("MongoDB (nx-27017)", f"the server did not start on port {port}")
    try:
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def mongo_database_name() -> str:
    return f"aion_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def mongo_log_store(mongo_url: str, mongo_database_name: str, settings: Any) -> Iterator[str]:
    """Point the log store at the stand-in server (MONGO_URL + a private database) for one test."""
    settings.MONGO_URL = mongo_url
    settings.MONGO_DATABASE = mongo_database_name
    yield mongo_url
