"""Per-request context (request id, actor) carried through logs, audit and events."""

from __future__ import annotations

import asyncio
import contextvars
import random
import re

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("aion_request_id", default=None)

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")


def accept_or_generate_request_id(candidate: str | None) -> str:
    """A client's id when it is well-formed, otherwise a fresh one."""
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    # 128 random bits as 32 hex digits, like uuid4().hex, without a urandom syscall per request:
    # request ids must be unique, not secret (random reseeds itself in forked children).
    return f"{random.getrandbits(128):032x}"


def current_request_id() -> str | None:
    return request_id_var.get()


# The ASGI server's event loop, remembered by aion.asgi on the first HTTP request. HTTP views run on
# pool threads outside it; what must happen on that loop (the in-memory channel layer's queues, which
# the WebSocket consumers wait on) is scheduled there with asyncio.run_coroutine_threadsafe.
_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def server_event_loop() -> asyncio.AbstractEventLoop | None:
    """The serving event loop when this process is an ASGI server and it is running, else None."""
    loop = _server_loop
    return loop if loop is not None and loop.is_running() else None
