"""The node agent's self-heal rule: by default a key changed by hand on a document already in place is reported as
observed (the control plane then sees the drift) and left; a new document is applied, and a restart keeps the rule.
With ``--self-heal`` the drift is still reported once, then put back on the next cycle.

The control plane is the stand-in of ``test_unit_agent_core`` (an httpx MockTransport answering its wire contract):
the real one is served in ``aion/tests/test_it_host_chain.py``.
"""

from __future__ import annotations

from pathlib import Path

from kernel.agent.core import Agent
from kernel.tests.test_unit_agent_core import StandInControlPlane, make_agent, root, sysctl

__all__ = ["root"]  # the fixture, imported for pytest


def without_self_heal(root: Path, stand_in: StandInControlPlane) -> Agent:
    agent = make_agent(root, stand_in)
    agent.options.self_heal = False
    return agent


def hand_edit(root: Path, value: str) -> None:
    (root / "proc" / "sys" / "net" / "core" / "somaxconn").write_text(value + "\n")


def test_a_hand_edit_of_a_document_in_place_is_reported_and_left(root):
    stand_in = StandInControlPlane({"net.core.somaxconn": 1024})
    agent = without_self_heal(root, stand_in)
    agent.tick()
    assert sysctl(root, "net.core.somaxconn") == "1024"  # a new document: applied as always
    hand_edit(root, "2048")
    agent.tick()
    assert sysctl(root, "net.core.somaxconn") == "2048"
    scope = stand_in.reports[-1]["scopes"]["sysctl"]
    assert scope["observed"]["net.core.somaxconn"] == "2048" and scope["revision"] == 1
    assert scope["results"]["net.core.somaxconn"] == {"outcome": "unchanged", "error": None}
    restarted = without_self_heal(root, stand_in)  # the state file says the document is in place
    restarted.tick()
    assert sysctl(root, "net.core.somaxconn") == "2048"


def test_a_new_document_is_applied_over_a_hand_edit_and_self_heal_puts_it_back(root):
    stand_in = StandInControlPlane({"net.core.somaxconn": 1024})
    agent = without_self_heal(root, stand_in)
    agent.tick()
    hand_edit(root, "2048")
    stand_in.revision, stand_in.document = 2, {"net.core.somaxconn": 512}
    agent.tick()
    assert sysctl(root, "net.core.somaxconn") == "512"
    hand_edit(root, "2048")
    healing = make_agent(root, stand_in)
    healing.options.self_heal = True
    healing.tick()  # first the drift is reported as it is
    assert sysctl(root, "net.core.somaxconn") == "2048"
    assert stand_in.reports[-1]["scopes"]["sysctl"]["observed"]["net.core.somaxconn"] == "2048"
    healing.tick()  # then put back, and reported applied
    assert sysctl(root, "net.core.somaxconn") == "512"
    scope = stand_in.reports[-1]["scopes"]["sysctl"]
    assert scope["observed"]["net.core.somaxconn"] == "512"
    assert scope["results"]["net.core.somaxconn"]["outcome"] == "applied"
