#!/usr/bin/env python3
"""The README's two commands: ``python3 scripts/dev.py run`` and ``python3 scripts/dev.py test``.

run:  virtualenv + pinned requirements, migrate, first Console admin, then the ASGI
      web server (uvicorn, HTTP + WebSockets), a Celery worker and Celery beat, all
      on embedded defaults; Ctrl-C stops all three.
test: the same virtualenv plus dev requirements, then ruff, mypy, the import
      contracts (lint-imports), the missing-migration check and the whole pytest
      suite (extra args go to pytest).
Only the standard library is used here, so it runs on a fresh Python 3.11+.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("AION_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
# mypy checks every app, not only the shared package.
MYPY_PACKAGES = ("aion", "console", "hooks", "kernel", "memory", "modules", "router")


def log(message: str) -> None:
    print(f"[aion] {message}", flush=True)


def requirement_files(kind: str) -> list[Path]:
    files = [ROOT / "requirements.txt"]
    if kind in ("test", "ci"):
        files.append(ROOT / "requirements-dev.txt")
    if kind == "ci":
        files.append(ROOT / "requirements-ci.txt")
    return [f for f in files if f.exists()]


def ensure_venv(kind: str) -> None:
    if not PY.exists():
        log(f"creating virtualenv in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    files = requirement_files(kind)
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    stamp = VENV / f".aion-requirements-{kind}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    log("installing pinned requirements: " + ", ".join(f.name for f in files))
    args = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for f in files:
        args += ["-r", str(f)]
    subprocess.run(args, check=True, cwd=ROOT)
    stamp.write_text(digest)


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(PY), "manage.py", *args], check=True, cwd=ROOT, env=env)


def run(argv: list[str]) -> int:
    ensure_venv("run")
    env = dict(os.environ)
    var_dir = Path(env.setdefault("AION_VAR_DIR", str(ROOT / "var"))).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)  # settings create no folder: the SQLite file and the rest live here
    metrics_dir = var_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if "--debug" in argv:
        env["AION_DEBUG"] = "1"
    host = env.get("AION_HOST", "127.0.0.1")
    port = env.get("AION_PORT", "8000")
    manage("migrate", "--noinput", env=env)
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    manage("bootstrap_admin", env=env)
    manage("router_policy", "bootstrap", env=env)  # revision 1 is an explicit write, never a side effect of a read
    processes = {
        "web": [
            *(str(PY), "-m", "uvicorn", "aion.asgi:application", "--host", host, "--port", port),
            *("--no-access-log", "--no-proxy-headers", "--log-config", str(ROOT / "aion" / "uvicorn_logging.json")),
        ],
        "worker": [str(PY), "-m", "celery", "-A", "aion", "worker", "-l", "INFO", "--concurrency", env.get("AION_WORKER_CONCURRENCY", "2")],
        "beat": [str(PY), "-m", "celery", "-A", "aion", "beat", "-l", "INFO", "--pidfile", str(var_dir / "beat.pid")],
    }
    children: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in processes.items():
        children[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        log(f"started {name} (pid {children[name].pid})")
    log(f"Console: http://{host}:{port}/console/   API docs: http://{host}:{port}/api/docs/   Ctrl-C stops everything")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                log(f"{name} exited with {child.returncode}; stopping the others")
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.5)
    log("stopping web, worker and beat")
    for child in children.values():
        if child.poll() is None:
            child.terminate()  # the main process only: Celery then shuts its pool down warmly
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    log("stopped")
    return exit_code


def test(argv: list[str]) -> int:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    ensure_venv("ci" if ci or os.environ.get("AION_TEST_EXTRAS") else "test")
    env = dict(os.environ)  # pytest selects the test settings itself (aion/testing/pytest_env.py)
    steps = [
        ("ruff check", [str(BIN / "ruff"), "check", "."]),
        ("ruff format --check", [str(BIN / "ruff"), "format", "--check", "."]),
        ("mypy", [str(BIN / "mypy"), *MYPY_PACKAGES]),
        ("lint-imports", [str(BIN / "lint-imports")]),  # the import contracts in pyproject.toml (docs/architecture.md)
        ("makemigrations --check", [str(PY), "manage.py", "makemigrations", "--check", "--dry-run"]),
    ]
    if "--no-lint" in argv:
        argv = [a for a in argv if a != "--no-lint"]
        steps = steps[4:]  # only the migration check
    for name, command in steps:
        log(name)
        lint_env = dict(env, AION_VAR_DIR=env.get("AION_VAR_DIR", str(ROOT / "var" / "lint")))
        Path(lint_env["AION_VAR_DIR"]).mkdir(parents=True, exist_ok=True)  # settings create no folder
        if subprocess.run(command, cwd=ROOT, env=lint_env).returncode != 0:
            log(f"{name} failed")
            return 1
    log("pytest " + " ".join(argv))
    result = subprocess.run([str(PY), "-m", "pytest", *argv], cwd=ROOT, env=env)
    return result.returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test"):
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    return run(rest) if command == "run" else test(rest)


if __name__ == "__main__":
    sys.exit(main())
