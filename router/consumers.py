"""WebSocket ``/ws/tasks/{id}``: the same status changes as the SSE stream, for browsers and clients.

Authentication: a Console session (Channels' AuthMiddlewareStack), an ``x-api-key``
header or ``Authorization: Bearer <JWT>``. The caller needs ``router.admin`` (or
``auditor``: read-only) and the task must belong to its tenant; otherwise the
socket is closed with code 4403 (4404 for an unknown task, 4401 with no credential).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from aion.rbac import Role, principal_allows


def _principal_for_scope(scope: dict[str, Any]) -> Any:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    from aion.auth.authentication import ApiKeyAuthentication

    if headers.get("x-api-key"):
        return ApiKeyAuthentication.principal_for_key(headers["x-api-key"])
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        from aion.auth.jwt import principal_for_token

        try:
            return principal_for_token(auth[7:].strip())
        except Exception:  # noqa: BLE001 - any bad token is simply "not authenticated"
            return None
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        from aion.auth.principal import principal_for_user

        return principal_for_user(user)
    return None


def _authorize(scope: dict[str, Any], task_id: str) -> tuple[int, str]:
    """(close code or 0, tenant id)."""
    from router.models import Task

    principal = _principal_for_scope(scope)
    if principal is None:
        return 4401, ""
    if not principal_allows(principal, Role.ROUTER_ADMIN, "GET"):
        return 4403, ""
    if not Task.objects.filter(pk=task_id, tenant_id=principal.tenant_id).exists():
        return 4404, ""
    return 0, principal.tenant_id


class TaskEventsConsumer(AsyncWebsocketConsumer):
    pump: asyncio.Task | None = None

    async def connect(self) -> None:
        task_id = str(self.scope["url_route"]["kwargs"]["task_id"])
        code, _tenant = await sync_to_async(_authorize)(self.scope, task_id)
        if code:
            await self.close(code=code)
            return
        await self.accept()
        # The stream runs beside the receive loop so a client disconnect cancels it.
        self.pump = asyncio.ensure_future(self._pump(task_id))

    async def _pump(self, task_id: str) -> None:
        from router.api.views import task_event_stream

        async for chunk in task_event_stream(
            task_id, max_seconds=settings.AION_ROUTER_SSE_MAX_SECONDS, poll_seconds=settings.AION_ROUTER_SSE_POLL_SECONDS
        ):
            message = _sse_to_json(chunk)
            if message is not None:
                await self.send(text_data=json.dumps(message))
        await self.close()

    async def disconnect(self, code: int) -> None:
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()


def _sse_to_json(chunk: str) -> dict[str, Any] | None:
    event, data = "", None
    for line in chunk.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
    return {"event": event, "data": data} if event else None
