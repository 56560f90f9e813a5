"""Shared test helpers: the documented receiver helper (executed from docs/webhooks.md) and endpoint setup."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from aion.auth.principal import system_principal
from aion.testing.factories import TENANT

DOC = Path(settings.BASE_DIR) / "docs" / "webhooks.md"


def doc_block(marker: str, language: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", text, re.S)
    assert match, f"docs/webhooks.md has no {marker} {language} block"
    return match.group(1)


def documented_verify_signature() -> Callable[..., bool]:
    """``verify_signature`` exactly as docs/webhooks.md shows it to receivers."""
    namespace: dict[str, Any] = {}
    exec(compile(doc_block("verify-helper", "python"), str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verify_signature"]  # type: ignore[no-any-return]


def make_endpoint(url: str, event_types: list[str] | None = None, tenant: str = TENANT) -> tuple[Any, str]:
    from hooks.services import create_endpoint

    return create_endpoint(tenant_id=tenant, url=url, event_types=event_types or ["kernel.proposal.*"], actor=system_principal(tenant))


def publish_event(event_type: str = "kernel.proposal.applied", tenant: str = TENANT, topic: str = "kernel.proposals") -> Any:
    from aion.outbox import publish

    return publish(topic, "p-1", {"proposal_id": "p-1", "state": "applied"}, event_type=event_type, tenant_id=tenant)
