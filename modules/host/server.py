"""The module host's HTTP server and command line (``python -m modules.host``).

Routes: ``GET /healthz`` (liveness, no I/O), ``GET /readyz`` (ready once the manifest verified and the
embedder is loaded; 503 while it starts or stops), ``GET /metrics`` (Prometheus text) and
``POST /v1/invoke`` (``{"task_id", "intent", "params"}`` -> ``{"output", "usage": {"tokens"}, ...}``,
the contract of ``router/clients.py``). Errors are problem JSON: the work raises ``aion.errors`` kinds and
``aion.problems`` gives their status and body.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from aion import errors
from aion.problems import PROBLEM_CONTENT_TYPE, domain_status, problem_body
from modules.host import work
from modules.host.identity import HostRefused, ModuleIdentity, verified_identity
from modules.host.replay import ReplayCache
from modules.host.samples import SamplePublisher, sample_envelope

HOST_VERSION = "1.1.0"
EXIT_REFUSED = 3
logger = logging.getLogger("aion.module_host")


class ModuleHost(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        identity: ModuleIdentity,
        *,
        embedder: work.Embedder,
        upstream: work.ChatUpstream,
        replay: ReplayCache,
        max_body_bytes: int = 1024 * 1024,
        kafka_bootstrap: list[str] | None = None,
        target: str = "",
    ) -> None:
        super().__init__(address, HostHandler)
        self.identity = identity
        self.embedder = embedder
        self.upstream = upstream
        self.replay = replay
        self.max_body_bytes = max_body_bytes
        self.target = target
        self.ready = threading.Event()
        self.registry = CollectorRegistry()
        self.invocations = Counter(
            "module_host_invocations", "Invocations run, by intent family and outcome", ["kind", "outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "module_host_invoke_latency_seconds",
            "Time to run one invocation, by intent family",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.replays = Counter(
            "module_host_idempotent_replays", "Invocations answered from the Idempotency-Key cache", registry=self.registry
        )
        self.publisher = SamplePublisher(kafka_bootstrap, self.registry) if kafka_bootstrap else None

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "module": self.identity.name, "version": self.identity.version}

    def run(self, intent: str, params: dict[str, Any], *, request_id: str) -> work.WorkResult:
        if not self.identity.serves(intent):
            raise errors.NotFound(f"module {self.identity.name} does not serve intent {intent!r}", code="intent-not-served")
        family = intent.split(".", 1)[0]
        if family == "embed":
            return work.embed(self.embedder, params)
        if family == "chat":
            return work.chat(self.upstream, intent, params, request_id=request_id)
        raise errors.Rejected(f"this host runs embed.* and chat.* intents, not {intent!r}", code="intent-not-supported")


def _family(intent: str) -> str:
    family = intent.split(".", 1)[0]
    return family if family in ("embed", "chat") else "other"


class HostHandler(BaseHTTPRequestHandler):
    server: ModuleHost
    server_version = f"aion-module-host/{HOST_VERSION}"
    protocol_version = "HTTP/1.1"  # keep-alive: the router pools its connections per host

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._json(200, self.server.health())
        elif path == "/readyz":
            ready = self.server.ready.is_set()
            self._json(200 if ready else 503, {**self.server.health(), "status": "ok" if ready else "starting"})
        elif path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        else:
            self._problem(errors.NotFound(f"no route {path}"))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            body = self._body()
        except errors.DomainError as exc:
            self.close_connection = True
            self._problem(exc)
            return
        if path != "/v1/invoke":
            self._problem(errors.NotFound(f"no route {path}"))
            return
        key = self.headers.get("Idempotency-Key", "").strip()
        if not key:
            status, data = self._invoke(body)
            self._send(status, data, PROBLEM_CONTENT_TYPE if status >= 400 else "application/json")
            return
        try:
            entry, run = self.server.replay.claim(key, body, wait_seconds=self.server.upstream.timeout_s + 30)
        except errors.DomainError as exc:
            self._problem(exc)
            return
        if not run:
            self.server.replays.inc()
            self._send(entry.status, entry.body, PROBLEM_CONTENT_TYPE if entry.status >= 400 else "application/json", replayed=True)
            return
        status, data = 500, b""
        try:
            status, data = self._invoke(body)
        finally:
            self.server.replay.finish(key, entry, status, data)
        self._send(status, data, PROBLEM_CONTENT_TYPE if status >= 400 else "application/json")

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise errors.InvalidInput("Content-Length is not a number") from exc
        if length > self.server.max_body_bytes:
            raise errors.TooLarge(f"the request body is over {self.server.max_body_bytes} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _invoke(self, raw: bytes) -> tuple[int, bytes]:
        """Runs one invocation: (status, body). Publishes its runtime sample, whatever the outcome."""
        started = time.perf_counter()
        request_id = self.headers.get("x-request-id", "") or self.headers.get("Idempotency-Key", "")
        try:
            request = json.loads(raw or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("intent"), str) or not request["intent"]:
            return self._error(errors.InvalidInput("the body must be {intent, params}", errors={"intent": ["This field is required."]}))
        raw_params = request.get("params")
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        intent: str = request["intent"]
        outcome, tokens = "ok", 0
        try:
            result = self.server.run(intent, params, request_id=request_id)
            tokens = result.tokens
            payload = {
                "output": result.output,
                "usage": {"tokens": result.tokens},
                "module": self.server.identity.name,
                "version": self.server.identity.version,
                "pool": self.server.identity.pool,
                **result.extra,
            }
            status, data = 200, json.dumps(payload, separators=(",", ":")).encode()
        except errors.DomainError as exc:
            outcome = "timeout" if exc.code == "upstream-timeout" else "error"
            if isinstance(exc, errors.NotFound) and exc.code == "intent-not-served":
                return self._error(exc)  # not an invocation of this module: no sample
            status, data = self._error(exc)
        except Exception:
            logger.exception("invocation failed", extra={"intent": intent})
            outcome = "error"
            status, data = 500, json.dumps(problem_body(500, "the module host failed to run this invocation")).encode()
        elapsed = time.perf_counter() - started
        kind = _family(intent)
        self.server.invocations.labels(kind=kind, outcome=outcome).inc()
        self.server.latency.labels(kind=kind).observe(elapsed)
        if self.server.publisher is not None:
            identity = self.server.identity
            self.server.publisher.publish(
                sample_envelope(
                    module=identity.name,
                    version=identity.version,
                    pool=identity.pool,
                    intent=intent,
                    outcome=outcome,
                    latency_ms=elapsed * 1000.0,
                    tokens=tokens,
                    tenant_id=self.headers.get("x-tenant-id", ""),
                    task_id=str(request.get("task_id") or self.headers.get("Idempotency-Key", "")),
                    request_id=request_id,
                    target=self.server.target,
                )
            )
        return status, data

    @staticmethod
    def _error(exc: errors.DomainError) -> tuple[int, bytes]:
        status = domain_status(exc)
        body = problem_body(status, exc.detail, slug=exc.code, title=exc.title, errors=exc.errors, **exc.extra)
        return status, json.dumps(body).encode()

    def _problem(self, exc: errors.DomainError) -> None:
        status, data = self._error(exc)
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
        self._send(status, data, PROBLEM_CONTENT_TYPE, headers=headers)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str, *, replayed: bool = False, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes come every few seconds: log requests at DEBUG only."""
        logger.debug("%s " + format, self.address_string(), *args)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return port


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m modules.host",
        description="AION module host: verifies its signed module manifest, then serves /healthz, /readyz, /metrics and "
        "POST /v1/invoke (embed.* and chat.* intents). Every option defaults to the environment variable it names.",
    )
    parser.add_argument("--port", type=_port, default=env("AION_MODULE_HOST_PORT", "8080"), help="$AION_MODULE_HOST_PORT (8080)")
    # All interfaces by default: the kubelet and the control plane reach the pod's address.
    parser.add_argument("--bind", default=env("AION_MODULE_HOST_BIND", "0.0.0.0"), help="$AION_MODULE_HOST_BIND (0.0.0.0)")  # noqa: S104
    parser.add_argument("--manifest", default=env("AION_MODULE_MANIFEST", ""), help="$AION_MODULE_MANIFEST: the signed module manifest")
    parser.add_argument(
        "--trusted-keys",
        default=env("AION_COSIGN_PUBLIC_KEYS", ""),
        help="$AION_COSIGN_PUBLIC_KEYS: id=/path/cosign.pub[;not_before=..][;not_after=..][;retired], comma-separated",
    )
    parser.add_argument(
        "--embedder",
        choices=("auto", "minilm", "hash"),
        default=env("AION_MODULE_EMBEDDER", "auto"),
        help="$AION_MODULE_EMBEDDER (auto: all-MiniLM-L6-v2 where installed, else the feature-hash embedder)",
    )
    parser.add_argument("--chat-url", default=env("AION_MODULE_CHAT_URL", ""), help="$AION_MODULE_CHAT_URL: OpenAI-compatible base URL")
    parser.add_argument("--chat-model", default=env("AION_MODULE_CHAT_MODEL", ""), help="$AION_MODULE_CHAT_MODEL")
    parser.add_argument(
        "--kafka",
        default=env("KAFKA_BOOTSTRAP_SERVERS", ""),
        help="$KAFKA_BOOTSTRAP_SERVERS (comma-separated): publish a runtime sample per invocation (empty: off)",
    )
    parser.add_argument(
        "--target",
        default=env("AION_MODULE_HOST_TARGET", ""),
        help="$AION_MODULE_HOST_TARGET: the router's target name (default module:<name>)",
    )
    parser.add_argument(
        "--replay-entries",
        type=int,
        default=int(env("AION_MODULE_HOST_IDEMPOTENCY_ENTRIES", "10000")),
        help="$AION_MODULE_HOST_IDEMPOTENCY_ENTRIES",
    )
    parser.add_argument(
        "--replay-seconds",
        type=float,
        default=float(env("AION_MODULE_HOST_IDEMPOTENCY_SECONDS", "86400")),
        help="$AION_MODULE_HOST_IDEMPOTENCY_SECONDS",
    )
    args = parser.parse_args(argv)
    args.chat_api_key = env("AION_MODULE_CHAT_API_KEY", "")  # environment only: never on a command line
    args.chat_allow_private = _flag("AION_MODULE_CHAT_ALLOW_PRIVATE_NETWORKS")
    args.chat_timeout = float(env("AION_MODULE_CHAT_TIMEOUT_SECONDS", "30"))
    return args


def build_host(args: argparse.Namespace) -> ModuleHost:
    """The server for ARGS, after the manifest verified (HostRefused otherwise)."""
    identity = verified_identity(args.manifest, args.trusted_keys)
    upstream = work.ChatUpstream(
        url=args.chat_url,
        model=args.chat_model,
        api_key=args.chat_api_key,
        allow_private=args.chat_allow_private,
        timeout_s=args.chat_timeout,
    )
    bootstrap = [server.strip() for server in args.kafka.split(",") if server.strip()]
    return ModuleHost(
        (args.bind, args.port),
        identity,
        embedder=work.Embedder(args.embedder),
        upstream=upstream,
        replay=ReplayCache(args.replay_entries, args.replay_seconds),
        kafka_bootstrap=bootstrap,
        target=args.target,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=os.environ.get("AION_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        server = build_host(args)
    except HostRefused as exc:
        print(f"module host refusing to start: {exc}", file=sys.stderr)
        return EXIT_REFUSED

    def _stop(*_: Any) -> None:
        server.ready.clear()  # readiness fails first, so no new traffic is routed here while it stops
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    identity = server.identity

    def _warm_up() -> None:
        try:
            server.embedder.warm_up()
        except errors.DomainError:
            logger.exception("the embedder failed to load; embed.* invocations will answer 503")
        server.ready.set()

    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
    logger.info(
        "module host %s serving module %s %s (pool %s, key %s, embedder %s) on %s:%s",
        HOST_VERSION,
        identity.name,
        identity.version,
        identity.pool,
        identity.key_id,
        server.embedder.key,
        args.bind,
        server.server_port,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if server.publisher is not None:
            server.publisher.close()
    return 0
