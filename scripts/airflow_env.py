#!/usr/bin/env python3
"""Build (or reuse) the Airflow virtualenv of the DAGs in bigdata/airflow, apart from the product's .venv.

    python3 scripts/airflow_env.py            # build or reuse it; prints the venv's python on the last line

Airflow pins hundreds of packages the product does not want (SQLAlchemy 2, FastAPI, its own Pydantic...),
so it gets a virtualenv of its own, installed from the fully pinned ``bigdata/airflow/requirements.txt``.
The venv lives in ``$AION_AIRFLOW_VENV`` (default ``~/.cache/aion/airflow-<hash>``, the hash of the
requirements file and the Python version), so every worktree, both CI configurations and later runs
reuse it; a changed requirements file gets a new one. It is marked complete only after the install and
an ``airflow db migrate`` of a template metadata database (``<venv>/home-template/airflow.db``, which
tests copy instead of migrating again). A lock file serialises concurrent builders. A clean build takes
about 70 s of install and 25 s of migration on this machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "bigdata" / "airflow" / "requirements.txt"
MARKER = ".aion-airflow-complete"


def fingerprint() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:16]


def venv_path() -> Path:
    configured = os.environ.get("AION_AIRFLOW_VENV")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "aion" / f"airflow-{fingerprint()}"


def python_of(path: Path) -> Path:
    return path / "bin" / "python"


def template_home(path: Path) -> Path:
    """An AIRFLOW_HOME whose airflow.db is migrated: copy it, do not use it in place."""
    return path / "home-template"


def is_complete(path: Path) -> bool:
    marker = path / MARKER
    return marker.is_file() and marker.read_text().strip() == fingerprint() and python_of(path).exists()


def build(path: Path) -> None:
    started = time.monotonic()
    if path.exists():
        shutil.rmtree(path)  # a half-built venv from an interrupted run
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    python = str(python_of(path))
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
    installed = time.monotonic()
    home = template_home(path)
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    subprocess.run([python, "-m", "airflow", "db", "migrate"], check=True, env=env, stdout=subprocess.DEVNULL)
    (path / MARKER).write_text(fingerprint() + "\n")
    done = time.monotonic()
    print(f"airflow venv built in {done - started:.0f} s (install {installed - started:.0f} s, db migrate {done - installed:.0f} s)")


def ensure() -> Path:
    """The venv's python, building the venv first when it is missing or stale."""
    path = venv_path()
    if is_complete(path):
        return python_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same venv
        if not is_complete(path):
            build(path)
    return python_of(path)


def main() -> int:
    try:
        python = ensure()
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"could not build the Airflow virtualenv: {exc}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
