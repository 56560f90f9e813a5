"""Kernel test fixtures: personas (proposer, two admins, break-glass, an outsider), policy files and event checks."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from aion.models import OutboxEvent
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, make_api_key
from aion.testing.services import service_missing
from aion.topics import KERNEL_PROPOSALS, validate_event

SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "policies" / "kernel" / "policy.yaml"


@dataclass
class Persona:
    client: APIClient
    subject: str
    raw_key: str


def persona(roles: list[str], tenant: str = TENANT, name: str = "persona") -> Persona:
    raw, key = make_api_key(roles, tenant, name=name)
    return Persona(client=api_client(raw), subject=f"key:{key.prefix}", raw_key=raw)


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


def change(key: str = "net.core.somaxconn", frm: Any = None, to: Any = 1024) -> dict[str, Any]:
    return {"key": key, "from": frm, "to": to}


def proposal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scope": "sysctl",
        "changes": [change()],
        "justification": "Raise the accept backlog for the ingest pool",
        "risk_score": 0.2,
    }
    body.update(overrides)
    return body


def submit(who: Persona, **overrides: Any) -> dict[str, Any]:
    response = who.client.post("/v1/kernel/proposals", proposal_body(**overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def act(who: Persona, proposal_id: str, action: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return who.client.post(f"/v1/kernel/proposals/{proposal_id}/{action}", body or {}, format="json", **headers)


def kernel_events(proposal_id: str | None = None) -> list[OutboxEvent]:
    events = OutboxEvent.objects.filter(topic=KERNEL_PROPOSALS).order_by("id")
    if proposal_id:
        events = events.filter(key=str(proposal_id))
    return list(events)


def assert_valid_event(event: OutboxEvent) -> dict[str, Any]:
    """The envelope and its data match the topic's single JSON Schema (docs/events/kernel.proposals.json)."""
    validate_event(KERNEL_PROPOSALS, event.envelope)
    assert event.key == event.envelope["data"]["proposal"]["id"]
    return event.envelope


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
