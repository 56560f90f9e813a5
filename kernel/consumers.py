"""Live updates for the Console: a WebSocket per open list/detail page, one Channels group per tenant.

``kernel.live.notify_tenant`` sends ``{id, state, version, action}`` after each committed
change; the page reloads (or flags itself stale while a dialog is open).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from aion.auth.principal import principal_for_user
from kernel.live import tenant_group
from kernel.services import READ_ROLES


class ProposalUpdatesConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            await self.close(code=4401)
            return
        principal = await database_sync_to_async(principal_for_user)(user)
        if not set(principal.roles) & {str(r) for r in READ_ROLES}:
            await self.close(code=4403)
            return
        self.group = tenant_group(principal.tenant_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def proposal_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])
