"""The node agent's network applier: the MTU of a veth link inside a network namespace this test creates and
deletes, through the agent's configurable ip command prefix (``ip netns exec NS ip``). Needs iproute2 and root
(CI runs as root); with CI=true a missing ``ip`` fails."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from aion.testing.services import service_missing
from kernel.agent.appliers import APPLIED, FAILED, UNCHANGED, NetworkApplier, apply_key


@pytest.fixture()
def namespace() -> Iterator[str]:
    ip = shutil.which("ip")
    if not ip:
        service_missing("iproute2", "`ip` is not on PATH, so no network namespace can be made")
    if os.geteuid() != 0:
        service_missing("root", "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
    name = f"aion-agent-{secrets.token_hex(4)}"
    subprocess.run([ip, "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        subprocess.run(
            [ip, "netns", "exec", name, ip, "link", "add", "agent0", "type", "veth", "peer", "name", "agent1"], check=True, timeout=30
        )
        yield name
    finally:
        subprocess.run([ip, "netns", "delete", name], check=False, capture_output=True, timeout=30)
    listed = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    assert name not in listed


def test_the_mtu_of_a_named_link_is_set_and_read_back(namespace):
    applier = NetworkApplier("agent0", f"ip netns exec {namespace} ip")
    assert applier.observe("mtu") == "1500"
    result, before, after = apply_key(applier, "mtu", "1400")
    assert (result.outcome, result.error, before, after) == (APPLIED, None, "1500", "1400")
    link = subprocess.run(
        ["ip", "netns", "exec", namespace, "ip", "link", "show", "dev", "agent0"], capture_output=True, text=True, timeout=30
    )
    assert " mtu 1400 " in link.stdout
    assert apply_key(applier, "mtu", "1400")[0].outcome == UNCHANGED


def test_a_refused_mtu_and_a_missing_link_fail_with_iproutes_error(namespace):
    prefix = f"ip netns exec {namespace} ip"
    result, before, after = apply_key(NetworkApplier("agent0", prefix), "mtu", "70000")  # beyond a veth's maximum
    assert result.outcome == FAILED and "exited" in (result.error or "") and (before, after) == ("1500", "1500")
    missing = apply_key(NetworkApplier("eth-nope", prefix), "mtu", "1400")[0]
    assert missing.outcome == FAILED and "eth-nope" in (missing.error or "")
