"""Kernel test helpers shared across apps: personas (an API key with roles, in a tenant), proposal bodies,
submit/act through the API, and the kernel's outbox events checked against their schema.

The kernel's conftest registers the persona fixtures (``proposer``, ``admin``, ``admin2``, ``breakglass``,
``outsider``) on top of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rest_framework.test import APIClient

from aion.models import OutboxEvent
from aion.testing.factories import TENANT, api_client, make_api_key
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


def act(who: Persona, proposal_id: str, action: str, body: dict[str, Any] | None = None, **headers: Any) -> Any:
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
