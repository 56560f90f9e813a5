"""The module host (``python -m modules.host``, the Dockerfile's ``module-host`` target) serves /healthz and /readyz."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings

from aion.testing.processes import stop
from aion.testing.services import free_port

ROOT = Path(settings.BASE_DIR)


def test_the_module_host_answers_healthz_and_readyz_on_its_configured_port():
    port = free_port()
    env = {**os.environ, "AION_MODULE_HOST_PORT": str(port), "AION_MODULE_NAME": "summarizer", "AION_MODULE_VERSION": "1.1.0"}
    host = subprocess.Popen([sys.executable, "-m", "modules.host"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    response = None
    try:
        deadline = time.monotonic() + 30
        while response is None and host.poll() is None and time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.1)
        assert response is not None, f"the host did not answer (exit {host.poll()})"
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "module": "summarizer", "version": "1.1.0"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/nope", timeout=2).status_code == 404
        host.terminate()  # SIGTERM, as the kubelet stops it: a clean exit
        assert host.wait(timeout=10) == 0
    finally:
        if host.poll() is None:
            stop(host)


def test_the_module_host_has_help_and_refuses_a_bad_port():
    help_text = subprocess.run([sys.executable, "-m", "modules.host", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert help_text.returncode == 0 and "AION_MODULE_HOST_PORT" in help_text.stdout
    env = {**os.environ, "AION_MODULE_HOST_PORT": "99999"}
    bad = subprocess.run([sys.executable, "-m", "modules.host"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "not a TCP port" in bad.stderr
