"""Helpers of the hosts tests (issue 17 §2): node-agent personas bound to a host or a pool, and reports."""

from __future__ import annotations

from typing import Any

from aion.roles import Role
from aion.testing.factories import TENANT, api_client, make_api_key
from aion.testing.kernel_proposals import Persona, act, submit
from kernel.services import document_sha256


def agent(*, host: str = "", pool: str = "", tenant: str = TENANT, name: str = "agent") -> Persona:
    """A kernel.agent key bound to HOST and/or POOL (neither: an unbound key, which may not report)."""
    raw, key = make_api_key([Role.KERNEL_AGENT], tenant, name=name, host=host, pool=pool)
    return Persona(client=api_client(raw), subject=f"key:{key.prefix}", raw_key=raw)


def scope_report(revision: int, document: dict[str, Any], observed: dict[str, str] | None = None, **results: Any) -> dict[str, Any]:
    """A scope's report: REVISION with DOCUMENT's sha256, OBSERVED values (default: DOCUMENT as strings)."""
    if observed is None:
        observed = {key: str(int(value) if isinstance(value, bool) else value) for key, value in document.items()}
    outcome = {key: {"outcome": "applied", "error": None} for key in document}
    outcome.update(results)
    return {"revision": revision, "sha256": document_sha256(document), "observed": observed, "results": outcome}


def report_body(pool: str = "gpu", **scopes: dict[str, Any]) -> dict[str, Any]:
    return {"pool": pool, "agent_version": "1.0.0", "heartbeat": False, "scopes": scopes, "errors": []}


def post_report(who: Persona, host: str, body: dict[str, Any]) -> Any:
    return who.client.post(f"/v1/kernel/hosts/{host}/report", body, format="json")


def applied(proposer: Persona, admin: Persona, **overrides: Any) -> dict[str, Any]:
    """Submit and approve (the shipped policy applies on one approval): the proposal as applied."""
    proposal = submit(proposer, **overrides)
    response = act(admin, proposal["id"], "approve")
    assert response.status_code == 200 and response.json()["state"] == "applied", response.json()
    return dict(response.json())
