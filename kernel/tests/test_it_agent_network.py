"""The node agent's network applier: the MTU of a veth link inside a network namespace the test creates and
deletes, through the agent's configurable ip command prefix (``ip netns exec NS ip``). Needs iproute2 and root
(CI runs as root); with CI=true a missing ``ip`` fails (the fixture network_namespace, kernel/tests/conftest.py)."""

from __future__ import annotations

import subprocess

from kernel.agent.appliers import APPLIED, FAILED, UNCHANGED, NetworkApplier, apply_key


def test_the_mtu_of_a_named_link_is_set_and_read_back(network_namespace):
    applier = NetworkApplier("agent0", f"ip netns exec {network_namespace} ip")
    assert applier.observe("mtu") == "1500"
    result, before, after = apply_key(applier, "mtu", "1400")
    assert (result.outcome, result.error, before, after) == (APPLIED, None, "1500", "1400")
    link = subprocess.run(
        ["ip", "netns", "exec", network_namespace, "ip", "link", "show", "dev", "agent0"], capture_output=True, text=True, timeout=30
    )
    assert " mtu 1400 " in link.stdout
    assert apply_key(applier, "mtu", "1400")[0].outcome == UNCHANGED


def test_a_refused_mtu_and_a_missing_link_fail_with_iproutes_error(network_namespace):
    prefix = f"ip netns exec {network_namespace} ip"
    result, before, after = apply_key(NetworkApplier("agent0", prefix), "mtu", "70000")  # beyond a veth's maximum
    assert result.outcome == FAILED and "exited" in (result.error or "") and (before, after) == ("1500", "1500")
    missing = apply_key(NetworkApplier("eth-nope", prefix), "mtu", "1400")[0]
    assert missing.outcome == FAILED and "eth-nope" in (missing.error or "")
