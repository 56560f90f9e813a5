"""Memory test helpers: chunk encoding and splitting, and the API personas (imported by any app's tests)."""

from __future__ import annotations

import base64
import hashlib

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, make_api_key


class Personas:
    def __init__(self) -> None:
        self.writer = api_client(make_api_key([Role.MEMORY_WRITER, Role.MEMORY_READER], TENANT)[0])
        self.teammate = api_client(make_api_key([Role.MEMORY_READER], TENANT)[0])
        self.outsider = api_client(make_api_key([Role.MEMORY_WRITER, Role.MEMORY_READER], OTHER_TENANT)[0])
        self.no_roles = api_client(make_api_key([], TENANT)[0])
        self.anonymous = api_client()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]
