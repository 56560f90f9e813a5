"""The project's own tooling configuration: what pytest collects and what mypy checks (no database, no processes)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _apps() -> set[str]:
    """The project's Django apps at the top level (each a package with an apps.py)."""
    return {path.parent.name for path in ROOT.glob("*/apps.py")}


def test_every_testpath_exists():
    testpaths = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    assert [path for path in testpaths if not (ROOT / path).is_dir()] == []
    assert set(testpaths) == _apps()


def test_the_test_command_runs_mypy_on_every_app():
    spec = importlib.util.spec_from_file_location("aion_dev_script", ROOT / "scripts" / "dev.py")
    assert spec and spec.loader
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    assert set(dev.MYPY_PACKAGES) == _apps() and "aion" in _apps()
