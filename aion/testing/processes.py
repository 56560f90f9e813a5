"""Running real Django/Celery subprocesses against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child process that must see this test run's database and var folder."""
    env = dict(os.environ)
    env["AION_VAR_DIR"] = str(settings.VAR_DIR)
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env["AION_SQLITE_PATH"] = str(db["NAME"])
    else:
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        env["DATABASE_URL"] = f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    env.update(extra)
    return env


def django_setup_in_subprocess(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``django.setup()`` in a fresh interpreter with exactly ENV (plus PATH): how start-up checks of settings are seen."""
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','aion.settings'); django.setup()"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=timeout
    )


def start_celery_worker(*args: str, **env_extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "celery", "-A", "aion", "worker", "-l", "WARNING", "--pool", "solo", *args]
    return subprocess.Popen(command, cwd=ROOT, env=subprocess_env(**env_extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return (out or b"").decode(errors="replace")


def dockerfile_web_command() -> list[str]:
    """The web process exactly as the Dockerfile's CMD starts it (exec form), so tests serve the deployed process model."""
    import json

    for line in reversed((ROOT / "Dockerfile").read_text().splitlines()):
        if line.startswith("CMD "):
            return list(json.loads(line[4:]))
    raise AssertionError("the Dockerfile has no exec-form CMD")


def _with_address(command: list[str], port: int) -> list[str]:
    """Replaces the CMD's --host/--port (or granian's --interface-bound options) by 127.0.0.1:<port>."""
    out: list[str] = []
    skip = False
    for part in command:
        if skip:
            skip = False
            continue
        if part in ("--host", "--port"):
            skip = True
            continue
        out.append(part)
    return [sys.executable, "-m", *out, "--host", "127.0.0.1", "--port", str(port)]


class ServedInstance:
    """A real web process on this run's test database; ``url(path)`` addresses it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def serve(log_dir: Path, command: list[str] | None = None, ready_path: str = "/healthz", **env_extra: str) -> ServedInstance:
    """Starts the Dockerfile's web command (or ``command``) and waits, within a deadline, until it answers."""
    import time
    import urllib.error
    import urllib.request

    from aion.testing.services import free_port

    port = free_port()
    argv = _with_address(command or dockerfile_web_command(), port)
    log_path = log_dir / f"web-{port}.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(argv, cwd=ROOT, env=subprocess_env(**env_extra), stdout=log, stderr=subprocess.STDOUT)
    instance = ServedInstance(process, port, log_path)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(instance.url(ready_path), timeout=2):  # noqa: S310 - loopback
                return instance
        except urllib.error.HTTPError:
            return instance  # it answers (readiness may be degraded on purpose)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise AssertionError(f"the web process did not start: {instance.log()[-3000:]}") from None
            time.sleep(0.1)
