"""Kernel test fixtures: personas (proposer, two admins, break-glass, an outsider), policy files and event checks."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT
from aion.testing.kernel_proposals import SHIPPED_POLICY, Persona, persona
from aion.testing.services import service_missing


@pytest.fixture()
def proposer(db: None) -> Persona:
    return persona([Role.KERNEL_PROPOSER], name="proposer")


@pytest.fixture()
def admin(db: None) -> Persona:
    return persona([Role.KERNEL_ADMIN], name="admin-a")


@pytest.fixture()
def admin2(db: None) -> Persona:
    return persona([Role.KERNEL_ADMIN], name="admin-b")


@pytest.fixture()
def breakglass(db: None) -> Persona:
    return persona([Role.KERNEL_BREAKGLASS], name="breakglass")


@pytest.fixture()
def outsider(db: None) -> Persona:
    """Every kernel role, but in another tenant."""
    return persona([Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER, Role.KERNEL_BREAKGLASS], tenant=OTHER_TENANT, name="outsider")


@pytest.fixture()
def policy_file(tmp_path: Path, settings: Any) -> Callable[..., Path]:
    """Write a policy (the shipped one with OVERRIDES merged at the top level) and select it."""
    counter = {"n": 0}

    def write(text: str | None = None, **overrides: Any) -> Path:
        counter["n"] += 1
        path = tmp_path / f"policy-{counter['n']}.yaml"
        if text is None:
            data = yaml.safe_load(SHIPPED_POLICY.read_text())
            data.update(overrides)
            text = yaml.safe_dump(data)
        path.write_text(text)
        settings.AION_KERNEL_POLICY_PATH = str(path)
        return path

    return write


@pytest.fixture()
def network_namespace() -> Iterator[str]:
    """A network namespace with a veth pair (agent0, agent1), deleted afterwards; with CI=true a missing `ip` fails."""
    ip = shutil.which("ip")
    if not ip:
        service_missing("iproute2", "`ip` is not on PATH, so no network namespace can be made")
    if os.geteuid() != 0:
        service_missing("root", "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
    name = f"aion-agent-{secrets.token_hex(4)}"
    subprocess.run([ip, "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        subprocess.run(
            [ip, "netns", "exec", name, ip, "link", "add", "agent0", "type", "veth", "peer", "name", "agent1"], check=True, timeout=30
        )
        yield name
    finally:
        subprocess.run([ip, "netns", "delete", name], check=False, capture_output=True, timeout=30)
    listed = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    assert name not in listed
