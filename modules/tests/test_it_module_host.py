"""The module host (``python -m modules.host``, the Dockerfile's ``module-host`` target) served as its own process.

It verifies its signed manifest before it serves (and refuses to start otherwise), answers /healthz, /readyz
and /metrics, computes real embeddings for ``embed.*``, replays a repeated ``Idempotency-Key`` without
running again, and forwards ``chat.*`` to an OpenAI-compatible upstream.

The chat upstream is a stand-in: ``StandInUpstream`` below, a tiny local HTTP server that answers
``/v1/chat/completions`` in OpenAI's shape, because no real language model can run here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from aion.embedders import HASH_MODEL, MINILM_MODEL, minilm_installed
from aion.testing.module_host import host_manifest, start_module_host
from aion.testing.module_releases import resign
from aion.testing.processes import ROOT
from aion.testing.waits import wait_until

pytestmark = [pytest.mark.slow]


class StandInUpstream(ThreadingHTTPServer):
    """The stand-in for an OpenAI-compatible LLM server: echoes the last user message, counts tokens as words."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        self.requests: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _UpstreamHandler(BaseHTTPRequestHandler):
    server: StandInUpstream

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
        prompt = body["messages"][-1]["content"]
        answer = {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {prompt}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(prompt.split()) + 1},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def upstream():
    server = StandInUpstream()
    yield server
    server.close()


def invoke(host, intent: str, params: dict[str, Any], *, key: str | None = None, **headers: str) -> httpx.Response:
    key = key or str(uuid.uuid4())
    body = {"task_id": key, "intent": intent, "params": params}
    return httpx.post(f"{host.url}/v1/invoke", json=body, headers={"Idempotency-Key": key, "x-tenant-id": "acme", **headers}, timeout=60)


def metric(host, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{host.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_help_names_every_setting():
    result = subprocess.run([sys.executable, "-m", "modules.host", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in (
        "AION_MODULE_HOST_PORT",
        "AION_MODULE_MANIFEST",
        "AION_COSIGN_PUBLIC_KEYS",
        "AION_MODULE_CHAT_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
    ):
        assert name in result.stdout


def test_it_serves_health_readiness_and_metrics_for_its_verified_module(tmp_path, key, served_hosts):
    host = start_module_host(tmp_path, host_manifest(key), key.entry(), AION_MODULE_EMBEDDER="hash")
    served_hosts.append(host)
    health = httpx.get(f"{host.url}/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok", "module": "embedder", "version": "1.0.0"}
    assert httpx.get(f"{host.url}/readyz", timeout=5).json()["status"] == "ok"
    metrics = httpx.get(f"{host.url}/metrics", timeout=5)
    assert metrics.status_code == 200 and "module_host_invocations_total" in metrics.text
    missing = httpx.get(f"{host.url}/nope", timeout=5)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert "key k2026" in host.output()
    host.process.terminate()  # SIGTERM, as the kubelet stops it: a clean exit
    assert host.process.wait(timeout=20) == 0


def test_embed_returns_a_real_vector_and_says_which_model_made_it(tmp_path, key, served_hosts):
    """MiniLM where its packages are installed (they are in CI: requirements-ci.txt), else the feature-hash embedder."""
    host = start_module_host(tmp_path, host_manifest(key), key.entry())
    served_hosts.append(host)
    response = invoke(host, "embed.text", {"input": ["the cat sat on the mat", "a dog barked"]})
    assert response.status_code == 200, response.text
    body = response.json()
    output = body["output"]
    expected = MINILM_MODEL if minilm_installed() else HASH_MODEL
    assert output["model"] == expected and output["fallback"] is (expected == HASH_MODEL)
    assert output["dimension"] == 384 and [len(v) for v in output["embeddings"]] == [384, 384]
    norms = [sum(x * x for x in vector) ** 0.5 for vector in output["embeddings"]]
    assert all(abs(n - 1.0) < 1e-3 for n in norms)  # normalised, and not all zeros
    assert output["embeddings"][0] != output["embeddings"][1]
    assert body["usage"]["tokens"] == 9 and body["module"] == "embedder" and body["pool"] == "cpu"
    # The feature-hash embedder says it is the fallback.
    hashed = start_module_host(tmp_path, host_manifest(key), key.entry(), AION_MODULE_EMBEDDER="hash")
    served_hosts.append(hashed)
    single = invoke(hashed, "embed.query", {"input": "the cat"}).json()["output"]
    assert single["model"] == HASH_MODEL and single["fallback"] is True and len(single["embedding"]) == 384


def test_a_repeated_idempotency_key_returns_the_first_result_without_running_again(tmp_path, key, served_hosts, upstream):
    host = start_module_host(
        tmp_path,
        host_manifest(key),
        key.entry(),
        AION_MODULE_EMBEDDER="hash",
        AION_MODULE_CHAT_URL=upstream.url,
        AION_MODULE_CHAT_MODEL="stand-in",
        AION_MODULE_CHAT_ALLOW_PRIVATE_NETWORKS="true",
    )
    served_hosts.append(host)
    task = str(uuid.uuid4())
    first = invoke(host, "chat.reply", {"prompt": "hello there"}, key=task)
    again = invoke(host, "chat.reply", {"prompt": "hello there"}, key=task)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers.get("Idempotent-Replayed") == "true"
    assert len(upstream.requests) == 1  # the upstream ran once
    assert metric(host, "module_host_invocations_total", kind="chat", outcome="ok") == 1
    assert metric(host, "module_host_idempotent_replays_total") == 1
    # Concurrent repeats run once too.
    concurrent_key = str(uuid.uuid4())
    results: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda: results.append(invoke(host, "chat.reply", {"prompt": "x y"}, key=concurrent_key))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 4 and len({r.content for r in results}) == 1 and len(upstream.requests) == 2
    # The same key with another body is a conflict, not a replay.
    other = invoke(host, "chat.reply", {"prompt": "something else"}, key=task)
    assert other.status_code == 409 and other.json()["type"] == "urn:aion:problem:idempotency-key-reused"


def test_chat_is_forwarded_to_the_openai_compatible_upstream(tmp_path, key, served_hosts, upstream):
    env = {"AION_MODULE_CHAT_URL": upstream.url, "AION_MODULE_CHAT_MODEL": "stand-in", "AION_MODULE_CHAT_API_KEY": "sk-test"}
    host = start_module_host(tmp_path, host_manifest(key), key.entry(), AION_MODULE_EMBEDDER="hash", **env)
    served_hosts.append(host)
    # SSRF guard: the loopback upstream is refused until private networks are allowed.
    refused = invoke(host, "chat.reply", {"prompt": "hello"})
    assert refused.status_code == 503 and refused.json()["type"] == "urn:aion:problem:unsafe-destination"
    assert upstream.requests == []
    host.process.terminate()
    host.process.wait(timeout=20)
    allowed = start_module_host(
        tmp_path, host_manifest(key), key.entry(), AION_MODULE_EMBEDDER="hash", AION_MODULE_CHAT_ALLOW_PRIVATE_NETWORKS="true", **env
    )
    served_hosts.append(allowed)
    response = invoke(allowed, "chat.reply", {"messages": [{"role": "user", "content": "two words"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"]["content"] == "echo: two words" and body["usage"]["tokens"] == 5 and body["model"] == "stand-in"
    sent = upstream.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["authorization"] == "Bearer sk-test"
    assert sent["body"]["model"] == "stand-in" and sent["body"]["messages"] == [{"role": "user", "content": "two words"}]
    # An intent outside the manifest, and a bad body, are refused as problems.
    outside = invoke(allowed, "summarize.text", {"input": "x"})
    assert outside.status_code == 404 and outside.json()["type"] == "urn:aion:problem:intent-not-served"
    bad = httpx.post(f"{allowed.url}/v1/invoke", content=b"not json", timeout=10)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


def _refused(tmp_path, manifest: dict[str, Any], trusted: str) -> str:
    host = start_module_host(tmp_path, manifest, trusted, wait=False, AION_MODULE_EMBEDDER="hash")
    try:
        code = host.process.wait(timeout=60)
    finally:
        if host.process.poll() is None:
            host.process.kill()
    assert code == 3, host.output()
    return host.output()


def test_it_refuses_to_start_with_an_unsigned_or_tampered_manifest_or_an_untrusted_key(tmp_path, keys):
    trusted = keys.new("k2026")
    stranger = keys.new("stranger", trusted=False)
    assert "no signature" in _refused(tmp_path, host_manifest(None), trusted.entry())
    tampered = host_manifest(trusted)
    tampered["endpoint"] = "http://evil.example.com:8080"  # a signed field changed after signing
    assert "manifest_mismatch" in _refused(tmp_path, tampered, trusted.entry())
    more_intents = {**host_manifest(trusted), "intents": ["embed.*", "chat.*", "admin.*"]}
    assert "manifest_mismatch" in _refused(tmp_path, more_intents, trusted.entry())
    assert "bad_signature" in _refused(tmp_path, host_manifest(stranger), trusted.entry())
    assert "no trusted Cosign keys" in _refused(tmp_path, host_manifest(trusted), "")
    # Re-signed by a trusted key, the changed manifest is accepted: the check is the signature, not the content.
    host = start_module_host(tmp_path, resign(tampered, trusted), trusted.entry(), wait=False, AION_MODULE_EMBEDDER="hash")
    try:
        wait_until(lambda: _ready(host), timeout=60, what="the re-signed host to serve")
    finally:
        host.process.terminate()
        host.process.wait(timeout=20)


def _ready(host) -> bool:
    if host.process.poll() is not None:
        raise AssertionError(host.output())
    try:
        return httpx.get(f"{host.url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
