"""Hooks test helpers: the test sources' secrets, signed approval hooks, and a kernel proposal to act on (imported by any app's tests)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aion.auth.principal import system_principal
from aion.testing.factories import OTHER_TENANT, TENANT, api_client
from hooks import signing

ACME_SECRET = "hksec_acme-chatops-secret"  # noqa: S105 - a test source secret


ACME_READONLY_SECRET = "hksec_acme-reject-only"  # noqa: S105 - a test source secret


GLOBEX_SECRET = "hksec_globex-bot-secret"  # noqa: S105 - a test source secret


HOOK_SOURCES = ",".join(
    [
        f"chatops:{TENANT}:{ACME_SECRET}:kernel.approve|kernel.reject",
        f"rejector:{TENANT}:{ACME_READONLY_SECRET}:kernel.reject",
        f"globexbot:{OTHER_TENANT}:{GLOBEX_SECRET}:kernel.approve|kernel.reject",
    ]
)


def signed_headers(
    body: bytes, *, secrets: list[str], tenant: str = TENANT, delivery: str | None = None, timestamp: float | None = None
) -> dict[str, str]:
    """Django test-client keyword headers for a signed hook."""
    return {
        "HTTP_X_OMERTA_SIGNATURE": signing.sign(body, secrets, timestamp=time.time() if timestamp is None else timestamp),
        "HTTP_X_TENANT_ID": tenant,
        "HTTP_X_OMERTA_DELIVERY": delivery or f"dlv-{uuid.uuid4()}",
    }


def approval_body(proposal_id: Any, decision: str = "approve", approver: str = "alice", comment: str = "lgtm") -> bytes:
    return json.dumps({"proposal_id": str(proposal_id), "decision": decision, "approver": approver, "comment": comment}).encode()


def post_hook(body: bytes, **headers: str) -> Any:
    client: Any = api_client()  # the raw bytes the signature covers (the stubs type data as str)
    return client.generic("POST", "/v1/hooks/approval", body, content_type="application/json", **headers)


def submit_proposal(tenant: str = TENANT, key: str = "vm.swappiness", to: Any = 10) -> Any:
    """A pending kernel proposal (risk 0.1: one approval applies it)."""
    from kernel.services import submit_proposal as kernel_submit

    proposer = system_principal(tenant, name="proposer", roles=frozenset({"kernel.proposer"}))
    return kernel_submit(proposer, scope="sysctl", changes=[{"key": key, "from": None, "to": to}], justification="tune it", risk_score=0.1)
