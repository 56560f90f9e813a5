"""The host runtime end to end (issue 17 §5), every part a real process of its own.

Tansu (Kafka protocol, in memory), the web server (the Dockerfile's command), a Celery worker, the node agent
(``python -m kernel.agent --watch --no-self-heal`` on a scratch ``--root``), a module host (``python -m
modules.host``, its manifest signed by a Cosign key made here) and the runtime consumer (``manage.py
runtime_consumer``, group ``control-plane``). The test only speaks HTTP to them, edits the scratch root by hand,
reads Kafka and reads the shared database:

1. two sysctl proposals are submitted and approved through the API (the shipped policy applies them): one that
   stays (``vm.swappiness``), then the one the test rolls back (``net.core.somaxconn``);
2. the agent writes them under the scratch root and ``GET /v1/kernel/hosts`` shows the host converged on the
   second one's revision;
3. that proposal is rolled back: the host's own value is back, the host is converged on the rollback revision and
   the rollout (on the revision and on the proposal) says the rollback is complete;
4. a hand edit of the file of the key still desired is reported: the host is ``drifted`` with the observed
   value, the transition is audited, and the worker's outbox relay puts ``kernel.host.drifted`` on Kafka
   (``kernel.hosts``);
5. ``POST /v1/tasks`` with an ``embed.*`` intent, which the router policy sends to the registered module
   ``module:embedder`` (the module host), ends ``OK`` with the host's embedding;
6. the module host's runtime sample for that task crosses Kafka (``aion.metrics.runtime``) and the runtime
   consumer stores it, so the router's statistics for ``module:embedder`` count it.

No stand-ins. The module host runs its feature-hash embedder (``--embedder hash``, which its answer names):
loading MiniLM costs a minute of this machine's shared CPUs, and the MiniLM path of the same host is tested in
``modules/tests/test_it_module_host.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from aion.auth.principal import system_principal
from aion.embedders import HASH_MODEL
from aion.models import AuditRecord, OutboxEvent, OutboxRelayState
from aion.roles import Role
from aion.testing.factories import TENANT, make_api_key
from aion.testing.kafka import TansuBroker
from aion.testing.module_host import ServedHost, host_manifest, start_module_host, stop_module_host
from aion.testing.module_releases import KeyRingFixture, build_manifest
from aion.testing.processes import ROOT, ServedInstance, serve, stop, subprocess_env
from aion.testing.waits import wait_until
from aion.topics import KERNEL_HOSTS, METRICS_RUNTIME, TOPICS
from modules import services as modules
from router.models import RuntimeSample
from router.stats import target_stats

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HOST, POOL, KEY, KEPT = "node-a", "cpu", "net.core.somaxconn", "vm.swappiness"
ROUTER_POLICY = """
version: 1
settings: {seed: 7, timeout_ms: 20000, registry_modules: true}
targets:
  - {name: nowhere, kind: module, endpoint: "http://127.0.0.1:9"}
rules:
  - name: embeddings
    match: {intent: ["embed.*"]}
    choice: {route: local, strategy: priority, candidates: ["module:embedder"], fallbacks: []}
default: {strategy: priority, candidates: [nowhere]}
"""


class Api:
    """The served web process, as one credential sees it."""

    def __init__(self, web: ServedInstance, roles: list[str], name: str) -> None:
        self.web = web
        self.key = make_api_key(roles, TENANT, name=name)[0]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.request(method, self.web.url(path), json=body, headers={"X-API-Key": self.key}, timeout=30)


class Processes:
    """Everything the test started, stopped (and their logs kept for a failure's message) whatever happens."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.popen: dict[str, subprocess.Popen[bytes]] = {}
        self.web: ServedInstance | None = None
        self.host: ServedHost | None = None

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{name}.log", "wb") as log:  # the child keeps its own descriptor
            self.popen[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self.popen[name]

    def logs(self) -> str:
        parts = [f"--- {path.name}\n{path.read_text(errors='replace')[-2500:]}" for path in sorted(self.tmp.glob("*.log"))]
        return "\n".join(parts)

    def stop_all(self) -> None:
        for process in self.popen.values():
            stop(process)
        if self.host is not None:
            stop_module_host(self.host)
        if self.web is not None:
            stop(self.web.process)


@pytest.fixture()
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def kafka_record(broker: TansuBroker, topic: str, wanted: Callable[[dict[str, Any]], bool], *, timeout: float) -> dict[str, Any]:
    """The first envelope on TOPIC (one partition, read from the start without a group: no join to wait for) that
    satisfies WANTED, polled until TIMEOUT."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, request_timeout_ms=10000)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        seen: list[dict[str, Any]] = []

        def poll() -> dict[str, Any] | None:
            for batch in consumer.poll(timeout_ms=500).values():
                seen.extend(orjson.loads(r.value) for r in batch)
            return next((e for e in seen if wanted(e)), None)

        return wait_until(poll, timeout=timeout, what=f"the wanted record on {topic}", interval=0)
    finally:
        consumer.close()


def module_host_ready(host: ServedHost) -> bool:
    if host.process.poll() is not None:
        raise AssertionError(f"the module host exited with {host.process.returncode}:\n{host.output()}")
    try:
        return httpx.get(f"{host.url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def relayed_by_worker(row: OutboxEvent) -> None:
    """Asks the worker to relay the outbox (its beat does so every 5 s) until ROW is published to Kafka (bounded)."""
    from aion.tasks import relay_outbox

    def published() -> bool:
        relay_outbox.delay()
        return OutboxEvent.objects.filter(pk=row.pk, published_at__isnull=False).exists()

    try:
        wait_until(published, timeout=30, what=f"the worker to relay {row.event_type}", interval=2)
    except AssertionError as exc:
        state = OutboxRelayState.objects.filter().values().first()
        row.refresh_from_db()
        raise AssertionError(f"{exc}; relay state {state}; row attempts {row.attempts} error {row.last_error!r}") from None


def test_an_approval_changes_a_host_a_rollback_reverts_it_drift_is_seen_and_a_module_host_serves_the_router(
    tmp_path, settings, kafka_broker, processes
):
    kafka_broker.create_topics(sorted(TOPICS), partitions=1)
    bootstrap = kafka_broker.bootstrap
    cosign = KeyRingFixture(tmp_path, settings).new("k2026")
    policy = tmp_path / "router.yml"
    policy.write_text(ROUTER_POLICY)
    served = {"AION_ROUTER_POLICY_PATH": str(policy), "AION_COSIGN_PUBLIC_KEYS": cosign.entry(), "AION_ROUTER_STATS_CACHE_SECONDS": "0"}

    # The module host (it refuses to start unless its manifest verifies), registered as the module it serves; its
    # embedder loads while the rest starts.
    processes.host = host = start_module_host(
        tmp_path, host_manifest(cosign), cosign.entry(), wait=False, AION_MODULE_EMBEDDER="hash", KAFKA_BOOTSTRAP_SERVERS=bootstrap
    )
    manifest = build_manifest(cosign, name="embedder", version="1.0.0", intents=("embed.*", "chat.*"), endpoint=host.url)
    modules.register_module(TENANT, manifest, actor=system_principal(TENANT, "tests"), activate=True)

    processes.web = web = serve(tmp_path, **served)
    worker_env = {**served, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AION_KAFKA_TIMEOUT_SECONDS": "5"}
    worker_argv = [sys.executable, "-m", "celery", "-A", "aion", "worker", "-l", "WARNING", "--pool", "solo", "--hostname", "chain@%h"]
    processes.start("worker", worker_argv, subprocess_env(**worker_env))
    consumer_env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AION_RUNTIME_CONSUMER_MAX_POLL_SECONDS": "3"}
    processes.start("runtime-consumer", [sys.executable, "manage.py", "runtime_consumer"], subprocess_env(**consumer_env))

    # The node agent: a scratch root with the host's own value, a kernel.agent key bound to this host and pool.
    sysctl, kept = (tmp_path / "root" / "proc" / "sys" / Path(*key.split(".")) for key in (KEY, KEPT))
    for path, value in ((sysctl, "4096"), (kept, "60")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    credential = tmp_path / "agent-key"
    credential.write_text(make_api_key([Role.KERNEL_AGENT], TENANT, name="node-a agent", host=HOST, pool=POOL)[0] + "\n")
    agent_argv = [sys.executable, "-m", "kernel.agent", "--watch", "--no-self-heal", "--url", web.url("").rstrip("/")]
    agent_argv += ["--credential-file", str(credential), "--host", HOST, "--pool", POOL, "--scopes", "sysctl"]
    agent_argv += ["--root", str(tmp_path / "root"), "--state-file", str(tmp_path / "agent-state.json")]
    agent_argv += ["--interval", "0.5", "--heartbeat", "30", "--backoff-base", "0.2", "--backoff-max", "1", "--timeout", "10"]
    processes.start("node-agent", agent_argv, {"PATH": os.environ["PATH"]})  # nothing of the control plane's settings

    proposer = Api(web, [Role.KERNEL_PROPOSER], "proposer")
    admin = Api(web, [Role.KERNEL_ADMIN], "admin")
    reader = Api(web, [Role.KERNEL_ADMIN], "reader")
    router_admin = Api(web, [Role.ROUTER_ADMIN], "router admin")

    def host_view() -> dict[str, Any]:
        response = reader.call("GET", "/v1/kernel/hosts")
        assert response.status_code == 200, response.text
        return {h["name"]: h for h in response.json()["results"]}.get(HOST, {})

    def converged_on(revision: int) -> dict[str, Any] | None:
        view = host_view()
        on_it = view.get("state") == "converged" and view["scopes"]["sysctl"]["revision"] == revision
        return view if on_it else None

    def approve(key: str, value: int) -> dict[str, Any]:
        """Submitted by a proposer and approved by an admin through the API: the shipped policy applies it at once."""
        submitted = proposer.call("POST", "/v1/kernel/proposals", {
            "scope": "sysctl", "changes": [{"key": key, "from": None, "to": value}],
            "justification": f"Tune {key} for the ingest pool", "risk_score": 0.2,
        })  # fmt: skip
        assert submitted.status_code == 201, submitted.text
        approved = admin.call("POST", f"/v1/kernel/proposals/{submitted.json()['id']}/approve", {})
        assert approved.status_code == 200 and approved.json()["state"] == "applied", approved.text
        return dict(approved.json())

    try:
        # 1. Approved through the API: the proposal that stays, then the one rolled back below.
        approve(KEPT, 10)
        proposal = approve(KEY, 1024)
        proposal_id, applied_revision = proposal["id"], proposal["applied_revision"]

        # 2. The agent applies them and the host reports converged on the newest revision.
        wait_until(lambda: sysctl.read_text() == "1024\n", timeout=30, what="the agent to write the approved value")
        view = wait_until(lambda: converged_on(applied_revision), timeout=30, what="node-a converged on the applied revision")
        assert view["pool"] == POOL and view["scopes"]["sysctl"]["observed"] == {KEY: "1024", KEPT: "10"}
        assert kept.read_text() == "10\n"

        # 3. Rolled back: the host's own value is back and the host converged on the rollback revision.
        rolled = admin.call("POST", f"/v1/kernel/proposals/{proposal_id}/rollback", {"reason": "accept queue regression"})
        assert rolled.status_code == 200 and rolled.json()["state"] == "rolled_back", rolled.text
        rollback_revision = rolled.json()["rollback_revision"]
        wait_until(lambda: sysctl.read_text() == "4096\n", timeout=30, what="the agent to restore the host's own value")
        view = wait_until(lambda: converged_on(rollback_revision), timeout=30, what="node-a converged on the rollback revision")
        assert view["scopes"]["sysctl"]["observed"] == {KEPT: "10"} and kept.read_text() == "10\n"
        revision = reader.call("GET", f"/v1/kernel/config/sysctl/revisions/{rollback_revision}").json()
        assert {k: revision["rollout"][k] for k in ("targeted", "converged", "complete")} == {
            "targeted": 1,
            "converged": 1,
            "complete": True,
        }
        detail = reader.call("GET", f"/v1/kernel/proposals/{proposal_id}").json()
        assert detail["rollout"]["revision"] == rollback_revision and detail["rollout"]["rollback_complete"] is True

        # 4. A hand edit (the agent runs --no-self-heal): reported as drift, audited, and on Kafka.
        kept.write_text("100\n")
        view = wait_until(lambda: (v := host_view()).get("state") == "drifted" and v, timeout=30, what="node-a drifted")
        assert view["scopes"]["sysctl"]["drifted_keys"] == [{"key": KEPT, "desired": 10, "observed": "100"}]
        assert kept.read_text() == "100\n"  # reported, not put back (--no-self-heal)
        audit = AuditRecord.objects.filter(action="kernel.host.drifted", resource_type="kernel.host", resource_id=HOST)
        assert audit.count() == 1 and audit.get().tenant_id == TENANT
        row = OutboxEvent.objects.get(topic=KERNEL_HOSTS, event_type="kernel.host.drifted", key=HOST)
        relayed_by_worker(row)
        event = kafka_record(kafka_broker, KERNEL_HOSTS, lambda e: e["event_id"] == str(row.event_id), timeout=30)
        assert event["type"] == "kernel.host.drifted"
        assert event["tenant_id"] == TENANT and event["data"]["host"]["name"] == HOST and event["data"]["state"] == "drifted"

        # 5. A task routed to the module host returns a real embedding (once the host is ready: embedder loaded).
        wait_until(lambda: module_host_ready(host), timeout=120, what="the module host to be ready")
        assert httpx.get(f"{host.url}/healthz", timeout=5).status_code == 200  # what the health poller reads
        submitted_task = router_admin.call("POST", "/v1/tasks", {"intent": "embed.text", "params": {"input": "the chain holds"}})
        assert submitted_task.status_code == 202, submitted_task.text
        task_id = submitted_task.json()["id"]

        def finished() -> dict[str, Any] | None:
            body = router_admin.call("GET", f"/v1/tasks/{task_id}").json()
            return body if body["status"] not in ("PENDING", "RUNNING") else None

        task = wait_until(finished, timeout=60, what="the embedding task to finish")
        assert task["status"] == "OK", task
        assert task["engine"]["target"] == "module:embedder" and task["engine"]["route"] == "local"
        output = task["output"]
        embedding = output["embedding"]
        assert len(embedding) == 384 and all(isinstance(x, float) for x in embedding) and any(embedding)
        assert output["model"] == HASH_MODEL and output["fallback"] is True

        # 6. The module host's own sample for that task crosses Kafka into the router's statistics.
        def stored() -> list[RuntimeSample]:
            return list(RuntimeSample.objects.filter(target="module:embedder", task_id=uuid.UUID(task_id)))

        samples = wait_until(lambda: len(stored()) >= 2 and stored(), timeout=45, what="the module host's sample to be stored")
        host_sample = kafka_record(
            kafka_broker, METRICS_RUNTIME, lambda e: e["type"] == "module.sample" and e["data"].get("task_id") == task_id, timeout=30
        )
        assert uuid.UUID(host_sample["data"]["sample_id"]) in {s.sample_id for s in samples}  # the consumer stored it
        stats = target_stats(["module:embedder"])["module:embedder"]
        assert stats.samples == len(samples) >= 2 and stats.error_rate == 0.0 and stats.p50_ms is not None
    except Exception as exc:
        raise AssertionError(f"{exc}\n{processes.logs()}\n--- web\n{web.log()[-2500:]}\n--- module host\n{host.output()}") from exc
    assert json.loads((tmp_path / "agent-state.json").read_text())["scopes"]["sysctl"]["revision"] == rollback_revision
