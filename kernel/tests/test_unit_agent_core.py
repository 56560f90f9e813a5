"""One node-agent cycle and the --watch reporting rules, against a stand-in control plane (httpx.MockTransport).

The stand-in is for what the served product cannot be made to do: send a document whose sha256 does not verify,
and accept reports (``POST /v1/kernel/hosts/{host}/report`` is built on the control-plane branch, issue 17 §2).
Everything the product does serve is tested against a served instance in test_it_agent_process.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kernel.agent.appliers import SysctlApplier
from kernel.agent.backoff import Backoff
from kernel.agent.client import ControlPlane
from kernel.agent.core import Agent, JsonLog, Options, document_sha256
from kernel.agent.state import AgentState

POLICY = yaml.safe_load((Path(__file__).resolve().parents[2] / "policies" / "kernel" / "policy.yaml").read_text())


class StandInControlPlane:
    """Serves one sysctl document with an ETag (304 on a match), the shipped policy, and records reports."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.revision, self.document, self.tamper = 1, document, False
        self.reports: list[dict[str, Any]] = []
        self.report_status = 202
        self.report_headers: dict[str, str] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/kernel/policy":
            return httpx.Response(200, json={"status": {"state": "ok"}, "policy": POLICY})
        if request.url.path == "/v1/kernel/config/sysctl":
            etag = f'"{self.revision}"'
            if request.headers.get("If-None-Match") == etag:
                return httpx.Response(304, headers={"ETag": etag})
            sha = document_sha256({**self.document, "vm.swappiness": 1} if self.tamper else self.document)
            body = {"scope": "sysctl", "revision": self.revision, "document": self.document, "sha256": sha}
            return httpx.Response(200, json=body, headers={"ETag": etag})
        if request.method == "POST" and request.url.path == "/v1/kernel/hosts/node-a/report":
            self.reports.append(json.loads(request.content))
            return httpx.Response(self.report_status, json={}, headers=self.report_headers)
        return httpx.Response(404, json={"title": "Not found"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    for key, value in (("net.core.somaxconn", "4096"), ("vm.swappiness", "60")):
        path = tmp_path / "proc" / "sys" / Path(*key.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return tmp_path


def make_agent(root: Path, stand_in: StandInControlPlane, clock: Clock | None = None, log: io.StringIO | None = None) -> Agent:
    control_plane = ControlPlane("http://control-plane.test", "key", transport=httpx.MockTransport(stand_in.handler))
    options = Options(host="node-a", pool="cpu", scopes=["sysctl"], interval=30, heartbeat=60, backoff_base=1, backoff_max=8)
    return Agent(
        options,
        control_plane,
        {"sysctl": SysctlApplier(root)},
        AgentState(root / "state.json"),
        log=JsonLog(log or io.StringIO()),
        backoff=Backoff(1, 8),
        clock=clock or Clock(),
    )


def sysctl(root: Path, key: str) -> str:
    return (root / "proc" / "sys" / Path(*key.split("."))).read_text().strip()


def test_a_document_whose_sha256_does_not_verify_applies_nothing_and_says_so(root):
    stand_in = StandInControlPlane({"net.core.somaxconn": 1024})
    stand_in.tamper = True
    agent = make_agent(root, stand_in)
    assert agent.run_once() == 1
    assert sysctl(root, "net.core.somaxconn") == "4096"
    report = stand_in.reports[-1]
    assert report["scopes"] == {} and "sysctl: sha256 mismatch" in report["errors"][0] and "nothing applied" in report["errors"][0]
    stand_in.tamper = False  # the next good document is fetched in full (no ETag kept from the bad one) and applied
    assert make_agent(root, stand_in).run_once() == 0 and sysctl(root, "net.core.somaxconn") == "1024"


def test_a_cycle_reports_revision_observed_values_and_per_key_outcomes(root):
    stand_in = StandInControlPlane({"net.core.somaxconn": 1024, "vm.swappiness": 60, "kernel.panic": 1})
    assert make_agent(root, stand_in).run_once() == 1  # kernel.panic is refused: reported, with a failed key
    report = stand_in.reports[-1]
    assert report["pool"] == "cpu" and report["heartbeat"] is False and report["agent_version"]
    scope = report["scopes"]["sysctl"]
    assert scope["revision"] == 1 and scope["sha256"] == document_sha256(stand_in.document)
    assert scope["observed"] == {"net.core.somaxconn": "1024", "vm.swappiness": "60"}
    assert scope["results"]["net.core.somaxconn"] == {"outcome": "applied", "error": None}
    assert scope["results"]["vm.swappiness"] == {"outcome": "unchanged", "error": None}
    assert scope["results"]["kernel.panic"]["outcome"] == "failed"
    assert "not allowed in scope 'sysctl'" in scope["results"]["kernel.panic"]["error"]


def test_watch_reports_on_change_as_a_heartbeat_and_again_after_a_failed_report(root):
    stand_in, clock = StandInControlPlane({"net.core.somaxconn": 1024}), Clock()
    agent = make_agent(root, stand_in, clock)
    assert agent.tick() == 30 and [r["heartbeat"] for r in stand_in.reports] == [False]
    clock.now += 10
    assert agent.tick() == 30 and len(stand_in.reports) == 1  # nothing changed, no heartbeat due: silence
    clock.now += 60
    agent.tick()
    assert [r["heartbeat"] for r in stand_in.reports] == [False, True]
    (root / "proc" / "sys" / "net" / "core" / "somaxconn").write_text("2048\n")  # a hand edit: reported as it is (drift)
    agent.tick()
    assert sysctl(root, "net.core.somaxconn") == "2048" and stand_in.reports[-1]["heartbeat"] is False
    assert stand_in.reports[-1]["scopes"]["sysctl"]["observed"] == {"net.core.somaxconn": "2048"}
    assert stand_in.reports[-1]["scopes"]["sysctl"]["results"]["net.core.somaxconn"]["outcome"] == "unchanged"
    stand_in.report_status, clock.now = 503, clock.now + 61
    first, second = agent.tick(), agent.tick()  # a heartbeat not accepted: reported again every tick, after growing delays
    assert 0.5 <= first <= 1 and 1 <= second <= 2 and len(stand_in.reports) == 5
    stand_in.report_status = 202
    assert agent.tick() == 30 and len(stand_in.reports) == 6


def test_a_key_that_leaves_the_document_gets_the_hosts_own_value_back(root):
    stand_in = StandInControlPlane({"net.core.somaxconn": 1024})
    assert make_agent(root, stand_in).run_once() == 0 and sysctl(root, "net.core.somaxconn") == "1024"
    stand_in.revision, stand_in.document = 2, {}  # a rollback to the empty revision
    assert make_agent(root, stand_in).run_once() == 0  # a new process: the baseline came from the state file
    assert sysctl(root, "net.core.somaxconn") == "4096"
    assert AgentState(root / "state.json").scope("sysctl")["baseline"] == {}


def test_retry_after_is_honoured_and_a_refused_credential_is_not_hammered(root):
    stand_in, clock = StandInControlPlane({"net.core.somaxconn": 1024}), Clock()
    stand_in.report_status, stand_in.report_headers = 503, {"Retry-After": "5"}
    agent = make_agent(root, stand_in, clock)
    assert agent.tick() == 5  # the backoff would say 0.5-1 s; the control plane asked for 5 (under the 8 s cap)
    stand_in.report_status, stand_in.report_headers = 403, {}
    assert agent.tick() == 8  # retrying does not cure a 403: the longest delay
    once = make_agent(root, stand_in)
    before = len(stand_in.reports)
    assert once.run_once() == 2 and len(stand_in.reports) == before + 1  # --once: no retry of a 403
