"""Live updates: after a proposal changes, tell the tenant's open Console pages (Channels group).

A missing or unreachable channel layer (Redis down) never fails the change: pages fall back
to polling ``/console/proposals/changes.json``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any

logger = logging.getLogger("kernel.live")

_sender_lock = threading.Lock()
_sender: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, loop) of this process's sender thread


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

        from aion.context import server_event_loop

        layer = get_channel_layer()
        if layer is None:
            return
        group = tenant_group(tenant_id)

        async def send_all() -> None:
            for message in messages:
                await layer.group_send(group, {"type": "proposal.changed", "message": message})

        if type(layer).__name__ == "InMemoryChannelLayer":
            # In-process queues belong to the server's event loop: send there (and wait, it is cheap).
            # HTTP views run on pool threads outside that loop (aion.asgi), so hand the send over.
            server_loop = server_event_loop()
            if server_loop is not None:
                asyncio.run_coroutine_threadsafe(send_all(), server_loop).result(timeout=5)
            else:
                async_to_sync(send_all)()  # no ASGI server in this process (tests, commands, workers)
            return
        # A network layer (Redis): hand the send to this process's sender loop and do not wait for
        # it; the response never waits on the channel layer (it cost 10% of an approval under load).
        _run_in_sender(send_all()).add_done_callback(_log_failure)
    except Exception as exc:  # noqa: BLE001 - live updates are best effort; polling covers the gap
        logger.warning("kernel live update not sent: %s", exc)


def _run_in_sender(coroutine: Coroutine[Any, Any, None]) -> Future[None]:
    """Schedule COROUTINE on one long-lived event loop thread per process (its Redis connections are
    reused); a forked child (Celery prefork) starts its own."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="kernel-live-sender", daemon=True).start()
            _sender = (os.getpid(), loop)
        loop = _sender[1]
    return asyncio.run_coroutine_threadsafe(coroutine, loop)


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("kernel live update not sent: %s", future.exception())
