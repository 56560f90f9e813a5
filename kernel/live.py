"""Live updates: after a proposal changes, tell the tenant's open Console pages (Channels group).

A missing or unreachable channel layer (Redis down) never fails the change: pages fall back
to polling ``/console/proposals/changes.json``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

logger = logging.getLogger("kernel.live")


def tenant_group(tenant_id: str) -> str:
    """A valid Channels group name (ASCII, < 100 chars) for any tenant id."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", tenant_id)[:40]
    return f"kernel-proposals.{safe}.{hashlib.sha256(tenant_id.encode()).hexdigest()[:12]}"


def notify_tenant(tenant_id: str, *messages: dict[str, Any]) -> None:
    """Send MESSAGES, in order, to the tenant's open pages: one hop to the channel layer for all of them
    (an approval that applies at once sends two and should not wait twice)."""
    if not messages:
        return
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        group = tenant_group(tenant_id)

        async def send_all() -> None:
            for message in messages:
                await layer.group_send(group, {"type": "proposal.changed", "message": message})

        async_to_sync(send_all)()
    except Exception as exc:  # noqa: BLE001 - live updates are best effort; polling covers the gap
        logger.warning("kernel live update not sent: %s", exc)
