"""The module host: the process of the ``aion-module-host`` image (Dockerfile target ``module-host``).

Run it with ``python -m modules.host`` (``--help`` for the options). For now it serves the probes the
control plane and the kubelet use (deploy/k8s/module-hosts.yaml, ``modules.poll_health``):

- ``GET /healthz``: 200 ``{"status": "ok", "module": <name>, "version": <version>}``, no I/O;
- ``GET /readyz``: 200 with the same body once the host serves (503 while it starts or stops).

Standard library only, so the image needs nothing but Python. The Host-runtime issue (17) grows it into the
real host: it loads the module, verifies the signed manifest at start-up and consumes and reports the
runtime metrics. Settings come from the environment (flags override them):

- ``AION_MODULE_HOST_PORT`` (default 8080), ``AION_MODULE_HOST_BIND`` (default 0.0.0.0);
- ``AION_MODULE_NAME`` (default ``unassigned``: no module loaded yet), ``AION_MODULE_VERSION`` (default the host's).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST_VERSION = "1.0.0"
logger = logging.getLogger("aion.module_host")


class ModuleHost(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], module: str, version: str) -> None:
        super().__init__(address, ProbeHandler)
        self.module = module
        self.version = version
        self.ready = threading.Event()

    def body(self) -> dict[str, Any]:
        return {"status": "ok", "module": self.module, "version": self.version}


class ProbeHandler(BaseHTTPRequestHandler):
    server: ModuleHost
    server_version = f"aion-module-host/{HOST_VERSION}"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._json(200, self.server.body())
        elif path == "/readyz":
            ready = self.server.ready.is_set()
            self._json(200 if ready else 503, {**self.server.body(), "status": "ok" if ready else "starting"})
        else:
            self._json(404, {"title": "Not Found", "status": 404, "detail": f"no route {path}"})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes come every few seconds: log them at DEBUG only."""
        logger.debug("%s " + format, self.address_string(), *args)


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modules.host", description="AION module host: serves /healthz and /readyz.")
    parser.add_argument(
        "--port", type=_port, default=os.environ.get("AION_MODULE_HOST_PORT", "8080"), help="default: $AION_MODULE_HOST_PORT or 8080"
    )
    # All interfaces by default: the kubelet and the control plane probe the pod's address.
    bind = os.environ.get("AION_MODULE_HOST_BIND", "0.0.0.0")  # noqa: S104
    parser.add_argument("--bind", default=bind, help="default: $AION_MODULE_HOST_BIND or 0.0.0.0")
    parser.add_argument("--module", default=os.environ.get("AION_MODULE_NAME", "unassigned"), help="default: $AION_MODULE_NAME")
    parser.add_argument("--version", dest="module_version", default=os.environ.get("AION_MODULE_VERSION", HOST_VERSION))
    args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=os.environ.get("AION_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = ModuleHost((args.bind, args.port), args.module, args.module_version)

    def _stop(*_: Any) -> None:
        server.ready.clear()  # readiness fails first, so no new traffic is routed here while it stops
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.ready.set()
    logger.info(
        "module host %s serving module %s %s on %s:%s", HOST_VERSION, args.module, args.module_version, args.bind, server.server_port
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
