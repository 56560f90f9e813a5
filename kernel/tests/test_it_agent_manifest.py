"""The node-agent DaemonSet's container, started as the kubelet would start it, against a served instance.

Without a cluster: the command and environment are the manifest's (deploy/k8s/node-agent.yaml, node-agent-cpu);
each mount path (/host, /var/lib/aion-node-agent, /etc/aion-node-agent) becomes a scratch folder, ``spec.nodeName``
a test name, ``AION_AGENT_URL`` the served instance, and the Secret's key a ``kernel.agent`` key bound to the pool
(one Secret per DaemonSet, as docs/kernel.md issues it). The poll interval and backoff ceiling are shortened so the
test need not wait the manifest's 30 s. The readiness and liveness probes are the manifest's own exec commands.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aion.roles import Role
from aion.testing.kernel_proposals import act, persona, submit
from aion.testing.processes import ROOT, serve, stop
from aion.testing.waits import wait_until
from kernel.tests.hosts_support import agent as agent_key

pytestmark = pytest.mark.django_db(transaction=True)

MANIFEST = ROOT / "deploy" / "k8s" / "node-agent.yaml"


def container(name: str) -> dict[str, Any]:
    daemonset = next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["metadata"]["name"] == name)
    return dict(daemonset["spec"]["template"]["spec"]["containers"][0])


def approve(key: str, to: int) -> None:
    proposal = submit(persona([Role.KERNEL_PROPOSER], name="proposer"), changes=[{"key": key, "from": None, "to": to}])
    assert act(persona([Role.KERNEL_ADMIN], name="admin"), proposal["id"], "approve").json()["state"] == "applied"


def converged_on(proposal_id: str) -> bool:
    """The control plane lists node-test-1 (pool cpu) converged on the proposal's revision, and its rollout complete."""
    auditor = persona([Role.AUDITOR], name="auditor")
    hosts = auditor.client.get("/v1/kernel/hosts", {"name": "node-test-1"}).json()["results"]
    rollout = auditor.client.get(f"/v1/kernel/proposals/{proposal_id}").json()["rollout"]
    return bool(
        hosts
        and hosts[0]["pool"] == "cpu"
        and hosts[0]["state"] == "converged"
        and hosts[0]["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "2048"}
        and rollout["complete"]
    )


def test_the_daemonset_container_converges_watches_and_passes_its_probes(tmp_path):
    spec = container("node-agent-cpu")
    mounts = {m["mountPath"]: tmp_path / m["name"] for m in spec["volumeMounts"]}
    for folder in mounts.values():
        folder.mkdir(parents=True, exist_ok=True)
    host_root = tmp_path / "host"  # /host/proc/sys and /host/proc/modules are two mounts of one root
    mounts["/host/proc/sys"] = host_root / "proc" / "sys"
    mounts["/host/proc/modules"] = host_root / "proc" / "modules"
    mounts["/host"] = host_root
    somaxconn = host_root / "proc" / "sys" / "net" / "core" / "somaxconn"
    somaxconn.parent.mkdir(parents=True)
    somaxconn.write_text("4096\n")
    (host_root / "proc" / "modules").write_text("")
    (mounts["/etc/aion-node-agent"] / "api-key").write_text(agent_key(pool="cpu", name="cpu pool agents").raw_key)

    def substitute(value: str) -> str:
        for path in sorted(mounts, key=len, reverse=True):
            if value == path or value.startswith(path + "/"):
                return str(mounts[path]) + value[len(path) :]
        return value

    instance = serve(tmp_path)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/bin"}
    for item in spec["env"]:
        if "value" in item:
            env[item["name"]] = substitute(str(item["value"]))
        else:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
            env[item["name"]] = "node-test-1"
    env.update(AION_AGENT_URL=instance.url("").rstrip("/"), AION_AGENT_INTERVAL="0.3", AION_AGENT_BACKOFF_MAX="0.5")

    def probe(kind: str) -> bool:
        command = [substitute(part) for part in spec[kind]["exec"]["command"]]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60, check=False).returncode == 0

    approve("net.core.somaxconn", 1024)
    log = tmp_path / "agent.log"
    assert not probe("readinessProbe")  # no cycle yet: not ready
    with open(log, "wb") as out:
        agent = subprocess.Popen([substitute(a) for a in spec["command"]], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: somaxconn.read_text() == "1024\n", timeout=60, what="the approved sysctl on the scratch root")
        wait_until(lambda: probe("readinessProbe"), timeout=30, what="the manifest's readiness probe")
        proposal = submit(
            persona([Role.KERNEL_PROPOSER], name="proposer-2"), changes=[{"key": "net.core.somaxconn", "from": 1024, "to": 2048}]
        )
        assert act(persona([Role.KERNEL_ADMIN], name="admin-2"), proposal["id"], "approve").json()["state"] == "applied"
        wait_until(lambda: somaxconn.read_text() == "2048\n", timeout=60, what="the next revision, picked up by --watch")
        revision = proposal["id"]
        wait_until(lambda: converged_on(revision), timeout=60, what="the control plane's view: node-test-1 converged")
        assert agent.poll() is None and probe("livenessProbe")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=15) == 0
    finally:
        if agent.poll() is None:
            stop(agent)
        stop(instance.process)
    text = log.read_text()
    assert '"status": 304' in text and '"event": "stop"' in text, text[-3000:]
