"""Per-request context (request id, actor) carried through logs, audit and events."""

from __future__ import annotations

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
