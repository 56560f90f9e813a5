"""The node agent's own guardrail check, backoff schedule, document hash and state file (pure parts)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from kernel.agent.backoff import Backoff
from kernel.agent.core import document_sha256
from kernel.agent.guardrail import refusal
from kernel.agent.state import AgentState, last_cycle_age
from kernel.services import document_sha256 as control_plane_sha256

SHIPPED = yaml.safe_load((Path(__file__).resolve().parents[2] / "policies" / "kernel" / "policy.yaml").read_text())


@pytest.mark.parametrize(
    ("scope", "key", "value", "reason"),
    [
        ("sysctl", "net.core.somaxconn", 1024, None),
        ("kernel_module", "overlay", "block", None),
        ("network", "mtu", 9000, None),
        ("network", "firewall.ssh_open", False, None),
        ("network", "dns.servers", "10.0.0.1, 10.0.0.2", None),
        ("sysctl", "kernel.panic", 1, "key 'kernel.panic' is not allowed in scope 'sysctl'"),
        ("firmware", "x", 1, "scope 'firmware' is not allowed"),
        ("sysctl", "net.core.somaxconn", 70000, "net.core.somaxconn must be between 128 and 65535"),
        ("sysctl", "vm.swappiness", "10", "vm.swappiness must be an integer"),
        ("sysctl", "vm.swappiness", True, "vm.swappiness must be an integer"),
        ("kernel_module", "overlay", "unload", "overlay must be one of load, block"),
        ("network", "dns.servers", "8.8.8.8; curl evil", "must match"),
        ("network", "firewall.ssh_open", 1, "must be true or false"),
    ],
)
def test_the_shipped_policy_allows_and_refuses_as_the_control_plane_does(scope, key, value, reason):
    found = refusal(SHIPPED, scope, key, value)
    if reason is None:
        assert found is None
    else:
        assert found is not None and found.startswith("refused") and reason in found


def test_no_policy_refuses_everything():
    assert refusal(None, "sysctl", "vm.swappiness", 10) == "refused: no guardrail policy is known to the agent"


def test_the_agent_hashes_a_document_exactly_as_the_control_plane_does():
    document = {"vm.swappiness": 10, "net.core.somaxconn": 1024, "ü": "é", "flag": True, "n": None}
    assert document_sha256(document) == control_plane_sha256(document)


def test_backoff_doubles_up_to_its_cap_with_equal_jitter():
    backoff = Backoff(base=1, cap=10, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(7)]
    ceilings = [1, 2, 4, 8, 10, 10, 10]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert len(set(delays)) == len(delays)  # jittered: no two retries of a fleet line up
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_the_state_file_survives_a_restart_and_a_torn_file_starts_afresh(tmp_path):
    path = tmp_path / "state" / "agent.json"
    state = AgentState(path)
    state.scope("sysctl").update(etag='"abc"', document={"vm.swappiness": 10})
    state.scope("sysctl")["baseline"]["vm.swappiness"] = "60"
    state.save()
    again = AgentState(path)
    assert again.scope("sysctl")["etag"] == '"abc"' and again.scope("sysctl")["baseline"] == {"vm.swappiness": "60"}
    age = last_cycle_age(path)
    assert age is not None and age < 60
    path.write_text('{"scopes": ')
    assert AgentState(path).data["scopes"] == {} and last_cycle_age(path) is None
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".agent-state-")]  # no temporary left behind
    json.loads(json.dumps(again.data))
