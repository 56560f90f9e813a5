"""A real threaded HTTP server on 127.0.0.1 for tests (webhook receivers, module hosts, providers).

    def test_x(http_server):
        http_server.respond(500)               # queue scripted responses, then
        http_server.respond(200, {"ok": True})  # the default (200 {}) once the queue is empty
        ... code under test posts to http_server.url("/hook") ...
        assert http_server.requests[0].json() == {...}

``http_server.handler = fn`` replaces the script with a function
``fn(request) -> (status, body, headers)``; ``delay`` slows every answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Reply = tuple[int, Any, dict[str, str]]


class LocalHTTPServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.script: deque[Reply] = deque()
        self.default: Reply = (200, {}, {})
        self.handler: Callable[[RecordedRequest], Reply] | None = None
        self.delay = 0.0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with owner.lock:
                    owner.requests.append(request)
                    reply = owner.handler(request) if owner.handler else (owner.script.popleft() if owner.script else owner.default)
                if owner.delay:
                    time.sleep(owner.delay)
                status, payload, headers = reply
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(self, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1) -> None:
        for _ in range(times):
            self.script.append((status, {} if body is None else body, headers or {}))

    def start(self) -> LocalHTTPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def http_server() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture()
def make_http_server() -> Iterator[Callable[[], LocalHTTPServer]]:
    """For tests that need several servers (e.g. a module host and a provider)."""
    servers: list[LocalHTTPServer] = []

    def make() -> LocalHTTPServer:
        server = LocalHTTPServer().start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
