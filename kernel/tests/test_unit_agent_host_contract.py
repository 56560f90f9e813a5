"""The two sides of the report contract agree on values: what the agent writes and reads back for a desired value
(``kernel.agent.appliers.desired_text``) is what the control plane expects to observe (``kernel.hosts``), so a host
that applied a revision is converged, not drifted, whatever the value's JSON type."""

from __future__ import annotations

from typing import Any

import pytest

from kernel.agent.appliers import desired_text
from kernel.agent.core import document_sha256 as agent_sha256
from kernel.documents import document_sha256
from kernel.hosts import _same_observed

VALUES: list[Any] = [True, False, 0, 1024, 2.0, 0.5, "bbr", "load", "block", [4096, 87380, 6291456], [1, 2.0], "4096\t87380"]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_what_the_agent_writes_is_what_the_control_plane_expects_to_observe(value: Any) -> None:
    assert _same_observed(desired_text(value), value)


def test_a_changed_value_is_still_a_difference() -> None:
    assert not _same_observed(desired_text(2048), 1024) and not _same_observed("4096 87380", [4096, 87380, 6291456])


def test_the_agent_verifies_the_hash_the_control_plane_serves() -> None:
    document = {"net.core.somaxconn": 1024, "vm.swappiness": 10.0, "net.ipv4.tcp_rmem": [4096, 87380, 6291456], "k": True}
    assert agent_sha256(document) == document_sha256(document)
