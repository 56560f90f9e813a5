"""The node agent runs without the control plane: in a fresh interpreter where every import outside the standard
library, httpx (and what httpx needs) and kernel.agent fails, it imports, answers --help and builds a cycle."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKED_RUN = r"""
import importlib, importlib.abc, pkgutil, runpy, sys
ROOT = sys.argv[1]
sys.path.insert(0, ROOT)
HTTPX = {"httpx", "httpcore", "h11", "anyio", "sniffio", "certifi", "idna", "typing_extensions", "exceptiongroup"}
ALLOWED = set(sys.stdlib_module_names) | HTTPX | {"kernel"}
before = {name.partition(".")[0] for name in sys.modules}  # what the interpreter's site start-up loaded

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top not in ALLOWED or (top == "kernel" and name != "kernel" and not name.startswith("kernel.agent")):
            raise ModuleNotFoundError(f"the node agent imported {name}, which a node does not have", name=name)
        return None

sys.meta_path.insert(0, Blocker())
import kernel.agent
for module in pkgutil.walk_packages(kernel.agent.__path__, "kernel.agent."):
    if module.name != "kernel.agent.__main__":
        importlib.import_module(module.name)
from kernel.agent.cli import build_appliers, parser
build_appliers(parser().parse_args(["--root", "/nonexistent"]))
loaded = {name.partition(".")[0] for name in sys.modules} - before
assert loaded <= ALLOWED, sorted(loaded - ALLOWED)
assert "django" not in sys.modules and not any(n == "aion" or n.startswith("aion.") for n in sys.modules)
sys.argv = ["kernel.agent", "--help"]
runpy.run_module("kernel.agent", run_name="__main__")
"""


def test_the_agent_imports_and_runs_with_only_the_standard_library_and_httpx():
    result = subprocess.run(
        [sys.executable, "-I", "-c", BLOCKED_RUN, str(ROOT)],
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},  # no DJANGO_SETTINGS_MODULE, no AION_* settings
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage: python -m kernel.agent" in result.stdout and "--credential-file" in result.stdout


def test_the_import_contract_forbids_every_other_module_of_kernel():
    """pyproject.toml's node-agent contract lists kernel's modules one by one: a new one must join the list."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    contract = next(c for c in contracts if c["id"] == "node-agent")
    assert contract["type"] == "forbidden" and contract["source_modules"] == ["kernel.agent"]
    siblings = {
        f"kernel.{p.stem}" for p in (ROOT / "kernel").iterdir() if (p.suffix == ".py" or p.is_dir()) and not p.name.startswith("__")
    }
    siblings -= {"kernel.agent"}
    assert siblings <= set(contract["forbidden_modules"]), sorted(siblings - set(contract["forbidden_modules"]))
    assert {"django", "aion", "rest_framework", "celery"} <= set(contract["forbidden_modules"])


def test_the_images_requirements_are_httpx_and_its_dependencies_pinned_as_tested():
    """kernel/agent/requirements.txt (the node-agent image's only packages): exact pins of what this run imports."""
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "kernel" / "agent" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {name: version(name) for name in pins} == pins
    needed, queue = set(), ["httpx"]
    while queue:  # httpx's dependencies for this interpreter (no extras), transitively, as the installed metadata says
        name = canonicalize_name(queue.pop())
        if name in needed:
            continue
        needed.add(name)
        for requirement in map(Requirement, requires(name) or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
    assert needed == {canonicalize_name(name) for name in pins}
