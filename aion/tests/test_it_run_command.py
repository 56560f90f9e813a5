"""The README's run command starts web, worker and beat on embedded defaults and stops them on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from aion.testing.processes import ROOT
from aion.testing.services import free_port


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.slow
def test_run_command_serves_console_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(AION_VENV=sys.prefix, AION_VAR_DIR=str(tmp_path / "var"), AION_PORT=str(port), AION_ADMIN_PASSWORD="first-admin-pw")
    process = subprocess.Popen(
        [sys.executable, "scripts/dev.py", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        status = 0
        while time.monotonic() < deadline:
            try:
                status, _ = _get(base + "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                break
            time.sleep(0.5)
        assert status == 200, "web never answered /healthz"
        code, body = _get(base + "/readyz")
        assert code == 200 and json.loads(body)["dependencies"]["database"]["status"] == "ok"
        code, body = _get(base + "/console/login/")
        assert code == 200 and b"Log in" in body
        code, body = _get(base + "/static/console/console.css")
        assert code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    text = output.decode(errors="replace")
    assert f"Console: http://127.0.0.1:{port}/console/" in text
    assert "started worker" in text and "started beat" in text
    assert "[aion] stopped" in text, text[-3000:]
    assert process.returncode == 0
