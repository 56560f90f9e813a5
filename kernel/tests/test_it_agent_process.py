"""The node agent as a process (``python -m kernel.agent``) against a served instance of the product.

A proposal approved through the API changes a file under the agent's scratch root; an unchanged revision costs a
304; a restart re-reads and reports but rewrites nothing; a rollback puts the host's own value back; a key the
policy refuses is not applied; a hand edit is reported, not healed. The agent's credential is a real ``kernel.agent``
key bound to its host (``node-a``) and pool (``cpu``): every report is accepted, and each test reads the control
plane's own view (``GET /v1/kernel/hosts``, a revision's and a proposal's rollout, the audit trail and the outbox).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from aion.models import AuditRecord, OutboxEvent
from aion.roles import Role
from aion.testing.kernel_proposals import SHIPPED_POLICY, act, persona, submit
from aion.testing.processes import ROOT, ServedInstance, serve, stop
from aion.topics import KERNEL_HOSTS, validate_event
from kernel.agent.core import EXIT_FAILURES, EXIT_OK, EXIT_UNREPORTED, document_sha256
from kernel.tests.hosts_support import agent

pytestmark = pytest.mark.django_db(transaction=True)

RECORDING_MODPROBE = """#!/bin/sh
# Stands in for modprobe (no module may be loaded into this machine's kernel): records, then edits the scratch root.
echo "$*" >> "{log}"
if [ "$1" = "-r" ]; then grep -v "^$2 " "{modules}" > "{modules}.new"; mv "{modules}.new" "{modules}"
else echo "$1 16384 0 - Live 0x0000000000000000" >> "{modules}"; fi
"""


@pytest.fixture(scope="module")
def served(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedInstance]:
    with django_db_blocker.unblock():
        instance = serve(tmp_path_factory.mktemp("web"))
    try:
        yield instance
    finally:
        stop(instance.process)


@dataclass
class Node:
    """One host's scratch root, credential, state file and recording modprobe."""

    dir: Path
    url: str

    @property
    def root(self) -> Path:
        return self.dir / "root"

    def sysctl(self, key: str) -> Path:
        return self.root / "proc" / "sys" / Path(*key.split("."))

    def modprobe_calls(self) -> list[str]:
        return (self.dir / "modprobe.log").read_text().splitlines()

    def run(
        self, *extra: str, scopes: str = "sysctl,kernel_module", attempts: int = 1, url: str | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """``--once`` in a fresh interpreter with no Django settings in its environment: (exit status, log events)."""
        argv = [sys.executable, "-m", "kernel.agent", "--once", "--url", url or self.url, "--credential-file", str(self.dir / "credential")]
        argv += ["--host", "node-a", "--pool", "cpu", "--scopes", scopes, "--root", str(self.root)]
        argv += ["--state-file", str(self.dir / "state.json")]
        argv += ["--modprobe-command", str(self.dir / "modprobe"), "--report-attempts", str(attempts), "--backoff-base", "0.2"]
        argv += ["--backoff-max", "0.5", "--timeout", "20", *extra]
        result = subprocess.run(argv, cwd=ROOT, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=90)
        events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        assert events and events[0]["event"] == "start", result.stderr[-3000:]
        return result.returncode, events


@pytest.fixture()
def node(served: ServedInstance, tmp_path: Path) -> Node:
    node = Node(tmp_path, served.url("").rstrip("/"))
    (tmp_path / "credential").write_text(agent(host="node-a", pool="cpu", name="node-a agent").raw_key + "\n")
    for key, value in (("net.core.somaxconn", "4096"), ("vm.swappiness", "60")):
        node.sysctl(key).parent.mkdir(parents=True, exist_ok=True)
        node.sysctl(key).write_text(value + "\n")
    modules = node.root / "proc" / "modules"
    modules.write_text("nf_conntrack 172032 1 - Live 0x0000000000000000\n")
    (tmp_path / "modprobe.log").write_text("")
    script = tmp_path / "modprobe"
    script.write_text(RECORDING_MODPROBE.format(log=tmp_path / "modprobe.log", modules=modules))
    script.chmod(0o700)
    return node


def approve(scope: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """Submitted by a proposer, approved by an admin: the shipped policy applies it at once (auto_apply)."""
    proposal = submit(persona([Role.KERNEL_PROPOSER], name="proposer"), scope=scope, changes=changes)
    body = act(persona([Role.KERNEL_ADMIN], name="admin"), proposal["id"], "approve").json()
    assert body["state"] == "applied", body
    return body


def of(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def reported(status: int, events: list[dict[str, Any]], expected: int = EXIT_OK) -> dict[str, Any]:
    """The report this run sent, which the control plane accepted (the run's exit status says so too)."""
    assert of(events, "report_accepted") and not of(events, "report_failed"), events
    assert status == expected, events
    return of(events, "report")[-1]["payload"]


def control_plane_host(name: str = "node-a") -> dict[str, Any]:
    """The host as the control plane lists it (``GET /v1/kernel/hosts``), read by an auditor."""
    response = persona([Role.AUDITOR], name="auditor").client.get("/v1/kernel/hosts", {"name": name})
    assert response.status_code == 200, response.json()
    [host] = [h for h in response.json()["results"] if h["name"] == name]
    return dict(host)


def revision_rollout(scope: str, number: int) -> dict[str, Any]:
    response = persona([Role.AUDITOR], name="auditor").client.get(f"/v1/kernel/config/{scope}/revisions/{number}")
    assert response.status_code == 200, response.json()
    return dict(response.json()["rollout"])


def test_an_approved_proposal_changes_the_host_and_a_restart_rewrites_nothing(node):
    sysctl = approve("sysctl", [{"key": "net.core.somaxconn", "from": None, "to": 1024}])
    modules = approve("kernel_module", [{"key": "overlay", "from": None, "to": "load"}])

    status, events = node.run()
    assert node.sysctl("net.core.somaxconn").read_text() == "1024\n"
    assert node.modprobe_calls() == ["overlay"]
    assert [(e["scope"], e["status"]) for e in of(events, "fetch")] == [("sysctl", 200), ("kernel_module", 200)]
    report = reported(status, events)
    assert report["pool"] == "cpu" and report["heartbeat"] is False and report["errors"] == []
    scope = report["scopes"]["sysctl"]
    assert scope["revision"] == sysctl["applied_revision"] and scope["sha256"] == document_sha256({"net.core.somaxconn": 1024})
    assert scope["observed"] == {"net.core.somaxconn": "1024"}
    assert scope["results"] == {"net.core.somaxconn": {"outcome": "applied", "error": None}}
    assert report["scopes"]["kernel_module"]["observed"] == {"overlay": "load"}

    host = control_plane_host()
    assert host["state"] == "converged" and host["pool"] == "cpu" and host["errors"] == []
    assert host["scopes"]["sysctl"]["state"] == "converged" and host["scopes"]["sysctl"]["revision"] == sysctl["applied_revision"]
    assert host["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "1024"}
    assert host["scopes"]["kernel_module"]["state"] == "converged" and host["scopes"]["kernel_module"]["observed"] == {"overlay": "load"}
    assert host["scopes"]["kernel_module"]["revision"] == modules["applied_revision"]
    assert revision_rollout("sysctl", sysctl["applied_revision"])["complete"] is True

    stamp = node.sysctl("net.core.somaxconn").stat().st_mtime_ns
    status, events = node.run()  # a restart: the same state file
    assert [(e["scope"], e["status"]) for e in of(events, "fetch")] == [("sysctl", 304), ("kernel_module", 304)]
    assert node.sysctl("net.core.somaxconn").stat().st_mtime_ns == stamp and node.modprobe_calls() == ["overlay"]
    again = reported(status, events)
    assert again["scopes"]["sysctl"]["results"] == {"net.core.somaxconn": {"outcome": "unchanged", "error": None}}
    assert again["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "1024"}
    assert again["scopes"]["kernel_module"]["results"]["overlay"]["outcome"] == "unchanged"
    assert control_plane_host()["state"] == "converged"


def test_a_new_revision_is_pending_then_converged_and_a_rollback_completes(node):
    approve("sysctl", [{"key": "net.core.somaxconn", "from": None, "to": 1024}])
    reported(*node.run(scopes="sysctl"))
    second = approve("sysctl", [{"key": "vm.swappiness", "from": None, "to": 10}])
    host = control_plane_host()  # the host has not fetched it yet: pending on the new revision
    assert host["state"] == "pending" and host["scopes"]["sysctl"]["desired_revision"] == second["applied_revision"]
    assert revision_rollout("sysctl", second["applied_revision"])["complete"] is False

    status, events = node.run(scopes="sysctl")
    assert of(events, "fetch")[0]["status"] == 200 and node.sysctl("vm.swappiness").read_text() == "10\n"
    assert reported(status, events)["scopes"]["sysctl"]["results"]["vm.swappiness"]["outcome"] == "applied"
    host = control_plane_host()
    assert host["state"] == "converged" and host["scopes"]["sysctl"]["revision"] == second["applied_revision"]
    assert host["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "1024", "vm.swappiness": "10"}

    admin = persona([Role.KERNEL_ADMIN], name="admin-2")
    rolled = act(admin, second["id"], "rollback", {"reason": "latency regression"})
    assert rolled.status_code == 200, rolled.json()
    rollback = rolled.json()["rollback_revision"]
    assert control_plane_host()["state"] == "pending"
    assert admin.client.get(f"/v1/kernel/proposals/{second['id']}").json()["rollout"]["rollback_complete"] is False

    status, events = node.run(scopes="sysctl")
    assert node.sysctl("vm.swappiness").read_text() == "60\n"  # the value the host had before the agent changed it
    assert node.sysctl("net.core.somaxconn").read_text() == "1024\n"
    assert [(e["key"], e["value"], e["outcome"]) for e in of(events, "restore")] == [("vm.swappiness", "60", "applied")]
    report = reported(status, events)
    assert report["scopes"]["sysctl"]["revision"] == rollback
    assert report["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "1024"}
    host = control_plane_host()
    assert host["state"] == "converged" and host["scopes"]["sysctl"]["revision"] == rollback
    assert host["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "1024"}
    rollout = admin.client.get(f"/v1/kernel/proposals/{second['id']}").json()["rollout"]
    assert rollout["kind"] == "rollback" and rollout["revision"] == rollback
    assert rollout["rollback_complete"] is True and rollout["targeted"] == rollout["converged"] == 1
    assert revision_rollout("sysctl", rollback)["complete"] is True


def test_a_hand_edit_is_reported_as_drift_with_the_observed_value(node):
    applied = approve("sysctl", [{"key": "net.core.somaxconn", "from": None, "to": 1024}])
    reported(*node.run(scopes="sysctl"))
    assert control_plane_host()["state"] == "converged"

    node.sysctl("net.core.somaxconn").write_text("2048\n")  # someone changed the sysctl by hand
    status, events = node.run(scopes="sysctl")
    assert node.sysctl("net.core.somaxconn").read_text() == "2048\n"  # reported as it is, not silently put back
    assert reported(status, events)["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "2048"}
    host = control_plane_host()
    assert host["state"] == "drifted" and host["scopes"]["sysctl"]["revision"] == applied["applied_revision"]
    assert host["scopes"]["sysctl"]["drifted_keys"] == [{"key": "net.core.somaxconn", "desired": 1024, "observed": "2048"}]
    [record] = AuditRecord.objects.filter(action="kernel.host.drifted", resource_id="node-a")
    assert record.metadata["previous_state"] == "converged" and record.request_id
    [event] = OutboxEvent.objects.filter(topic=KERNEL_HOSTS, event_type="kernel.host.drifted", key="node-a")
    validate_event(KERNEL_HOSTS, event.envelope)
    assert event.envelope["data"]["host"]["scopes"]["sysctl"]["drifted_keys"][0]["observed"] == "2048"

    reported(*node.run(scopes="sysctl"))  # still drifted: no second event
    assert OutboxEvent.objects.filter(topic=KERNEL_HOSTS, event_type="kernel.host.drifted").count() == 1
    approve("sysctl", [{"key": "net.core.somaxconn", "from": 1024, "to": 4000}])  # the next revision applies again
    reported(*node.run(scopes="sysctl"))
    assert node.sysctl("net.core.somaxconn").read_text() == "4000\n" and control_plane_host()["state"] == "converged"


def test_a_key_the_agents_policy_refuses_is_not_applied(node, tmp_path):
    """--policy-file: the agent's own copy of the policy, here without vm.swappiness (defence in depth)."""
    approve("sysctl", [{"key": "net.core.somaxconn", "from": None, "to": 1024}, {"key": "vm.swappiness", "from": None, "to": 10}])
    policy = yaml.safe_load(SHIPPED_POLICY.read_text())
    del policy["scopes"]["sysctl"]["keys"]["vm.swappiness"]
    (tmp_path / "policy.json").write_text(json.dumps({"policy": policy}))
    status, events = node.run("--policy-file", str(tmp_path / "policy.json"), scopes="sysctl")
    assert node.sysctl("vm.swappiness").read_text() == "60\n" and node.sysctl("net.core.somaxconn").read_text() == "1024\n"
    payload = reported(status, events, EXIT_FAILURES)
    result = payload["scopes"]["sysctl"]["results"]["vm.swappiness"]
    assert result["outcome"] == "failed" and "refused by the guardrail policy" in result["error"]
    assert payload["scopes"]["sysctl"]["observed"]["vm.swappiness"] == "60"
    host = control_plane_host()
    assert host["state"] == "failed" and host["scopes"]["sysctl"]["failed_keys"][0]["key"] == "vm.swappiness"


def test_an_unaccepted_report_is_retried_with_bounded_exponential_backoff(node):
    """A stopped control plane (its port listens no more): connection errors, which the agent retries. The first run
    applies and is accepted; the second, against the stopped instance, keeps what is in place and backs off."""
    approve("sysctl", [{"key": "net.core.somaxconn", "from": None, "to": 1024}])
    reported(*node.run(scopes="sysctl"))
    with socket.socket() as probe:  # a port nothing listens on any more: what the agent sees of a stopped instance
        probe.bind(("127.0.0.1", 0))
        stopped = f"http://127.0.0.1:{probe.getsockname()[1]}"
    status, events = node.run(scopes="sysctl", attempts=4, url=stopped)
    failures, reports = of(events, "report_failed"), of(events, "report")
    assert not of(events, "report_accepted")
    assert status == EXIT_UNREPORTED and [f["attempt"] for f in failures] == [1, 2, 3, 4] and len(reports) == 4
    assert all(f["status"] is None for f in failures)  # a connection error, retried per the documented rules
    ceilings = [0.2, 0.4, 0.5]  # base 0.2 doubling, capped at 0.5; the last attempt does not wait
    delays = [f["retry_in"] for f in failures]
    assert delays[-1] is None and all(c / 2 <= d <= c for d, c in zip(delays[:-1], ceilings, strict=True)), delays
    gaps = [later["ts"] - earlier["ts"] for earlier, later in itertools.pairwise(reports)]
    assert all(gap >= delay - 0.01 for gap, delay in zip(gaps, delays[:-1], strict=True)), (gaps, delays)
    assert node.sysctl("net.core.somaxconn").read_text() == "1024\n"  # the cached revision stays in place
    assert reports[-1]["payload"]["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "1024"}


def test_a_credential_bound_to_another_host_is_refused_and_not_retried(node):
    """403 host-binding: retrying does not cure it, so --once sends it once and exits 2 (docs/kernel.md)."""
    approve("sysctl", [{"key": "net.core.somaxconn", "from": None, "to": 1024}])
    (node.dir / "credential").write_text(agent(host="node-b", pool="cpu", name="node-b agent").raw_key)
    status, events = node.run(scopes="sysctl", attempts=4)
    assert status == EXIT_UNREPORTED and len(of(events, "report")) == 1
    assert [(f["status"], f["retry_in"]) for f in of(events, "report_failed")] == [(403, None)]
    assert persona([Role.AUDITOR], name="auditor").client.get("/v1/kernel/hosts").json()["count"] == 0


def test_an_approved_mtu_is_set_on_the_named_link_in_a_network_namespace(node, network_namespace):
    """The network scope end to end: the agent's ip command runs inside the namespace the fixture made (veth agent0)."""
    approve("network", [{"key": "mtu", "from": None, "to": 1400}])
    ip = f"ip netns exec {network_namespace} ip"
    status, events = node.run("--ip-command", ip, "--network-link", "agent0", scopes="network")
    scope = reported(status, events)["scopes"]["network"]
    assert scope["observed"] == {"mtu": "1400"} and scope["results"] == {"mtu": {"outcome": "applied", "error": None}}
    link = subprocess.run(
        ["ip", "netns", "exec", network_namespace, "ip", "-j", "link", "show", "dev", "agent0"], capture_output=True, timeout=30
    )
    assert json.loads(link.stdout)[0]["mtu"] == 1400
    host = control_plane_host()
    assert host["state"] == "converged" and host["scopes"]["network"]["observed"] == {"mtu": "1400"}
