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
