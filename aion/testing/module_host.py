"""A served module host (``python -m modules.host``) for tests: its signed manifest, start and stop (bounded)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aion.testing.module_releases import CosignKey, build_manifest


@dataclass
class ServedHost:
    process: Any
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def host_manifest(signer: CosignKey | None, **overrides: Any) -> dict[str, Any]:
    """The manifest of the module a test host serves: ``embedder`` 1.0.0 on the CPU pool, embed.* and chat.*."""
    fields: dict[str, Any] = {"name": "embedder", "version": "1.0.0", "intents": ("embed.*", "chat.*"), **overrides}
    return build_manifest(signer, **fields)


def start_module_host(tmp_path: Path, manifest: dict[str, Any], trusted: str, *, wait: bool = True, **env: str) -> ServedHost:
    """``python -m modules.host`` on a free port with MANIFEST (written to a file) and TRUSTED as AION_COSIGN_PUBLIC_KEYS.

    WAIT: until /readyz answers 200 (the embedder loaded), bounded; else the caller reads the exit.
    """
    import os
    import subprocess
    import sys

    import httpx

    from aion.testing.processes import ROOT
    from aion.testing.services import free_port
    from aion.testing.waits import wait_until

    path = tmp_path / f"manifest-{manifest.get('name')}-{len(list(tmp_path.glob('manifest-*')))}.json"
    path.write_text(json.dumps(manifest))
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AION_MODULE", "KAFKA_"))}
    child_env.update(AION_MODULE_HOST_PORT=str(port), AION_MODULE_HOST_BIND="127.0.0.1", AION_MODULE_MANIFEST=str(path))
    child_env.update(AION_COSIGN_PUBLIC_KEYS=trusted, **env)
    log = tmp_path / f"host-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "modules.host"], cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT)
    host = ServedHost(process, f"http://127.0.0.1:{port}", log)
    if wait:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the module host exited with {process.returncode}:\n{host.output()}")
            try:
                return httpx.get(f"{host.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, timeout=120, what="the module host to be ready")
        except BaseException:
            stop_module_host(host)
            raise
    return host


def stop_module_host(host: ServedHost) -> int:
    from aion.testing.processes import stop

    if host.process.poll() is None:
        host.process.terminate()
        try:
            return int(host.process.wait(timeout=20))
        except subprocess.TimeoutExpired:
            stop(host.process)
    return int(host.process.returncode)
