"""Fixtures of the hooks tests: hook sources from AION_HOOK_SOURCES, signed requests, kernel proposals."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings

from aion.auth.principal import system_principal
from aion.testing.factories import OTHER_TENANT, TENANT, api_client
from hooks import signing
from hooks.sources import clear_cache

ACME_SECRET = "hksec_acme-chatops-secret"
ACME_READONLY_SECRET = "hksec_acme-reject-only"
GLOBEX_SECRET = "hksec_globex-bot-secret"
HOOK_SOURCES = ",".join(
    [
        f"chatops:{TENANT}:{ACME_SECRET}:kernel.approve|kernel.reject",
        f"rejector:{TENANT}:{ACME_READONLY_SECRET}:kernel.reject",
        f"globexbot:{OTHER_TENANT}:{GLOBEX_SECRET}:kernel.approve|kernel.reject",
    ]
)


@pytest.fixture(autouse=True)
def hooks_settings(settings: Any) -> Any:
    settings.AION_HOOK_SOURCES = HOOK_SOURCES
    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    # Unique key prefixes: other test runs share the machine's Redis.
    run = uuid.uuid4().hex[:8]
    settings.AION_RATE_LIMIT_KEY_PREFIX = f"test:hooks:{run}:rl"
    settings.AION_HOOKS_IDEMPOTENCY_PREFIX = f"test:hooks:{run}:inbound:"
    settings.AION_IDEMPOTENCY_REDIS_URL = ""  # the database claim unless a test opts into Redis
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast Console personas
    clear_cache()
    yield settings
    clear_cache()


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
    return api_client().generic("POST", "/v1/hooks/approval", body, content_type="application/json", **headers)


def submit_proposal(tenant: str = TENANT, key: str = "vm.swappiness", to: Any = 10) -> Any:
    """A pending kernel proposal (risk 0.1: one approval applies it)."""
    from kernel.services import submit_proposal as kernel_submit

    proposer = system_principal(tenant, name="proposer", roles=frozenset({"kernel.proposer"}))
    return kernel_submit(proposer, scope="sysctl", changes=[{"key": key, "from": None, "to": to}], justification="tune it", risk_score=0.1)


@pytest.fixture()
def proposal(db: None) -> Any:
    return submit_proposal()


__all__ = ["ACME_SECRET", "GLOBEX_SECRET", "django_settings"]
