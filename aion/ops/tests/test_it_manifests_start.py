"""The pods start: each workload in deploy/k8s runs its container's command, with the container's environment,
on empty volumes, and reaches ready (issue 15 §1).

Without a cluster, the test does what the kubelet would: the environment is the image's ENV (the Dockerfile stage
that builds the manifest's image), then ``envFrom`` (configmap.yaml; the Secret's keys get test values), then
``env`` (``$(VAR)`` references expanded); every volume mount becomes an empty scratch folder (tmp_path / volume
name), and each value, argument and probe command that points under a mount path is rewritten to that folder;
each ``containerPort`` becomes a free loopback port. A volume from a ConfigMap that deploy/k8s does not ship (the
module host's signed manifest, which an operator creates) holds the test's stand-in: a module manifest signed by the
test's Cosign key, whose public half is in the Secret ``aion-cosign`` volume that ``AION_COSIGN_PUBLIC_KEYS`` names.
The cluster's service addresses (redis, kafka, qdrant, ...)
become this run's services, or are dropped where this run has none (the embedded defaults). Ready is the
manifest's own readiness probe passing (and, for beat, its liveness probe a few seconds later); a Job exits 0.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from django.conf import settings

from aion.testing.processes import dockerfile_web_command, stop, subprocess_env
from aion.testing.services import free_port

ROOT = Path(settings.BASE_DIR)
K8S = ROOT / "deploy" / "k8s"
COSIGN_MOUNT = Path("/etc/aion/cosign")
DEADLINE_SECONDS = 90

# The cluster's service addresses in configmap.yaml: this run's value when it has one, else dropped (embedded default).
SERVICE_KEYS = ("REDIS_URL", "CELERY_BROKER_URL", "KAFKA_BOOTSTRAP_SERVERS", "QDRANT_URL", "MONGO_URL", "AION_S3_ENDPOINT_URL")
SERVICE_KEYS += ("CLICKHOUSE_URL", "VAULT_ADDR")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _workload(manifest: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in _docs(K8S / manifest) if d["kind"] in ("Deployment", "Job") and name in (None, d["metadata"]["name"]))


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's stages by name (or "" for an unnamed one): their (INSTRUCTION, arguments), continuations joined."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, arguments = (pending + line).partition(" ")
        pending = ""
        if instruction.upper() == "FROM":
            parts = arguments.split()
            current = []
            stages[parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""] = current
        current.append((instruction.upper(), arguments.strip()))
    return stages


def stage_titles() -> dict[str, str]:
    """Stage name -> the image it builds (its ``LABEL org.opencontainers.image.title``)."""
    titles = {}
    for stage, instructions in dockerfile_stages().items():
        for instruction, arguments in instructions:
            if instruction == "LABEL":
                labels = dict(pair.partition("=")[::2] for pair in shlex.split(arguments))
                if "org.opencontainers.image.title" in labels:
                    titles[stage] = labels["org.opencontainers.image.title"]
    return titles


def image_repository_name(image: str) -> str:
    """``ghcr.io/omertaos/aion-control:1.0.0`` -> ``aion-control`` (registry, owner, tag and digest removed)."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def stage_for_image(image: str) -> str | None:
    """The Dockerfile target whose title is IMAGE's repository name, or None when this repo builds no such image."""
    return next((stage for stage, title in stage_titles().items() if title == image_repository_name(image)), None)


def image_env(stage: str) -> dict[str, str]:
    """The ENV a stage sets (key=value form)."""
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile_stages()[stage]:
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


class Container:
    """One manifest container made runnable here: argv, environment and probes with mounts and ports substituted."""

    def __init__(self, manifest: str, workload: str | None, tmp_path: Path) -> None:
        spec = _workload(manifest, workload)["spec"]["template"]["spec"]
        self.container = spec["containers"][0]
        self.is_job = _workload(manifest, workload)["kind"] == "Job"
        stage = stage_for_image(self.container["image"])
        assert stage, f"{manifest}: no Dockerfile target builds {self.container['image']}"
        self.stage = stage
        # Longest mount path first, so /tmp/prometheus (its own volume) wins over /tmp.
        self.mounts: dict[str, Path] = {}
        for mount in sorted(self.container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"])):
            scratch = tmp_path / mount["name"]
            scratch.mkdir()
            self.mounts[mount["mountPath"]] = scratch
        self._mount_pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(path)}(?=/|$|[\s)\"'])" for path in self.mounts) or "(?!)")
        self.ports = {str(p["containerPort"]): str(free_port()) for p in self.container.get("ports", [])}
        self.port_names = {p["name"]: self.ports[str(p["containerPort"])] for p in self.container.get("ports", [])}
        self.env = self._environment(tmp_path)
        self._operator_config_maps(spec, tmp_path)
        argv = [*self.container.get("command", []), *self.container.get("args", [])] or dockerfile_web_command()
        self.argv = [self.substitute(self._expand(arg)) for arg in argv]
        if "--host" in self.argv:  # the pod listens on its own address; here, loopback only
            self.argv[self.argv.index("--host") + 1] = "127.0.0.1"

    def _environment(self, tmp_path: Path) -> dict[str, str]:
        env = {k: v for k, v in image_env(self.stage).items() if k != "PATH"}
        configmap = next(d for d in _docs(K8S / "configmap.yaml") if d["kind"] == "ConfigMap")
        for source in self.container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] == configmap["metadata"]["name"]
                env.update({k: str(v) for k, v in configmap["data"].items()})
            else:
                env.update(self._secret_values(tmp_path))
        for item in self.container.get("env", []):
            if "value" in item:
                env[item["name"]] = self._expand(str(item["value"]), env)
            elif "fieldRef" in item.get("valueFrom", {}):
                env[item["name"]] = {"metadata.name": "aion-test-pod"}[item["valueFrom"]["fieldRef"]["fieldPath"]]
            elif "configMapKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["configMapKeyRef"]
                assert ref["name"] == configmap["metadata"]["name"]
                env[item["name"]] = str(configmap["data"][ref["key"]])
            else:
                key = item["valueFrom"]["secretKeyRef"]["key"]
                env[item["name"]] = self._secret_values(tmp_path)[key]
        env = {k: self.substitute(v) for k, v in env.items()}
        # This run's database and var folder stand for the cluster's; its services for the cluster's services.
        run = subprocess_env()
        # The image's PATH puts its venv first (/opt/venv/bin); here, this run's venv.
        env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", HOME=str(tmp_path), LANG="C.UTF-8")
        for key in (*SERVICE_KEYS, "DATABASE_URL", "AION_SQLITE_PATH"):
            env.pop(key, None)
            if run.get(key):
                env[key] = run[key]
        env["AION_VAR_DIR"] = run["AION_VAR_DIR"]
        if not settings.DATABASE_IS_POSTGRES:
            # AION_ENV=prod refuses SQLite and the filesystem broker (aion/env.py production_violation), which
            # this configuration runs on; everything else about the process stays as the manifest has it.
            env["AION_ENV"] = "dev"
        if "/tmp" in self.mounts:  # the container's /tmp is the mounted volume; here, its scratch folder
            env["TMPDIR"] = str(self.mounts["/tmp"])
        return env

    def _operator_config_maps(self, spec: dict[str, Any], tmp_path: Path) -> None:
        """Fills each mounted ConfigMap volume deploy/k8s does not define with its stand-in (the module docstring)."""
        import json

        from modules.signing import sign_manifest

        shipped = {d["metadata"]["name"] for path in K8S.glob("*.yaml") for d in _docs(path) if d.get("kind") == "ConfigMap"}
        mounted = {m["name"]: m["mountPath"] for m in self.container.get("volumeMounts", [])}
        for volume in spec.get("volumes", []):
            if volume.get("secret", {}).get("secretName") == "aion-cosign" and volume["name"] in mounted:
                self._secret_values(tmp_path)
                (self.mounts[mounted[volume["name"]]] / "cosign.pub").write_bytes(self._cosign_pem)
            name = volume.get("configMap", {}).get("name")
            if not name or name in shipped or volume["name"] not in mounted:
                continue
            assert self.stage == "module-host" and name.endswith("-manifest"), f"{name}: no stand-in for this ConfigMap"
            self._secret_values(tmp_path)
            pool = "gpu" if "gpu" in name else "cpu"
            manifest = {
                "name": "embedder",
                "version": "1.0.0",
                "image": "registry.example.com/aion/embedder:1.0.0@sha256:" + "0" * 64,
                "runtime": "python3.11",
                "resources": {"cpu": "500m", "memory": "512Mi", "gpu": 1 if pool == "gpu" else 0},
                "pool": pool,
                "intents": ["embed.*"],
                "endpoint": "http://module-host-cpu.aion.svc.cluster.local:8080",
            }
            signed = sign_manifest(manifest, self._cosign_private)
            (self.mounts[mounted[volume["name"]]] / "manifest.json").write_text(json.dumps(signed))

    def _secret_values(self, tmp_path: Path) -> dict[str, str]:
        """Test values for the Secret "aion-secrets" (policies/secrets/aion-secrets.enc.yaml holds the real ones)."""
        if not hasattr(self, "_secrets"):
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec

            self._cosign_private = ec.generate_private_key(ec.SECP256R1())
            key = self._cosign_private.public_key()
            self._cosign_pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            # Where the Secret aion-cosign is mounted (module-hosts.yaml); a container that mounts it finds the key there.
            pem = COSIGN_MOUNT / "cosign.pub"
            self._secrets = {
                "AION_SECRET_KEY": secrets.token_urlsafe(48),
                "AION_METRICS_TOKEN": secrets.token_urlsafe(24),
                "AION_ADMIN_PASSWORD": secrets.token_urlsafe(18),
                "AION_COSIGN_PUBLIC_KEYS": f"test={pem}",
            }
        return self._secrets

    def _expand(self, value: str, env: dict[str, str] | None = None) -> str:
        """Kubernetes' $(VAR) references to the container's variables; an unknown one stays as written."""
        env = self.env if env is None else env
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)

    def substitute(self, value: str) -> str:
        """VALUE with each mount path replaced by its scratch folder, and each container port by its loopback port."""
        value = self._mount_pattern.sub(lambda m: str(self.mounts[m.group(0)]), value)
        return self.ports.get(value, value)

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            return subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def probe(self, probe: dict[str, Any]) -> bool:
        if "httpGet" in probe:
            port = probe["httpGet"]["port"]
            port = self.port_names.get(port, port)
            try:
                # The kubelet sends the pod's address as Host; here, the loopback address.
                return httpx.get(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=5).status_code < 400
            except httpx.HTTPError:
                return False
        command = [self.substitute(part) for part in probe["exec"]["command"]]
        return subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, timeout=60, check=False).returncode == 0


def _wait(condition: Any, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what} (exit {process.poll()}):\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


MANIFESTS = [
    ("web.yaml", None),
    ("worker.yaml", None),
    ("beat.yaml", None),
    ("migrate-job.yaml", None),
    ("module-hosts.yaml", "module-host-cpu"),
    ("module-hosts.yaml", "module-host-gpu"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("manifest", "workload"), MANIFESTS)
def test_the_manifest_container_starts_on_empty_volumes_and_reaches_ready(manifest, workload, tmp_path):
    container = Container(manifest, workload, tmp_path)
    log = tmp_path / "container.log"
    process = container.start(log)
    try:
        if container.is_job:
            try:
                process.wait(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the job did not finish in {DEADLINE_SECONDS}s:\n{log.read_text(errors='replace')[-4000:]}")
            assert process.returncode == 0, log.read_text(errors="replace")[-4000:]
            return
        readiness = container.container["readinessProbe"]
        _wait(lambda: container.probe(readiness), process, f"{manifest}: the readiness probe never passed", log)
        if "startupProbe" in container.container:
            assert container.probe(container.container["startupProbe"]), log.read_text(errors="replace")[-4000:]
        # Still up a little later (beat, in particular, must not die after its first tick), and alive by its own probe.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert process.poll() is None, log.read_text(errors="replace")[-4000:]
        assert container.probe(container.container["livenessProbe"]), log.read_text(errors="replace")[-4000:]
    finally:
        if process.poll() is None:
            stop(process, timeout=30)


def test_a_process_creates_its_missing_prometheus_multiproc_dir(tmp_path):
    """The code's half of the fix: a /tmp volume without its own prometheus mount (older manifests, compose) still starts."""
    missing = tmp_path / "tmp" / "prometheus"
    env = subprocess_env(PROMETHEUS_MULTIPROC_DIR=str(missing))
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert missing.is_dir() and any(missing.glob("counter_*.db"))


def _images_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["image"]] if isinstance(node.get("image"), str) else []
        return own + [i for v in node.values() for i in _images_in(v)]
    if isinstance(node, list):
        return [i for v in node for i in _images_in(v)]
    return []


def test_every_image_a_kubernetes_manifest_names_is_built_by_a_dockerfile_target_or_pinned_by_digest():
    """A target per image, named by its ``org.opencontainers.image.title`` label (the Dockerfile's header lists them)."""
    images = {image for path in sorted(K8S.glob("*.yaml")) for doc in _docs(path) for image in _images_in(doc)}
    assert {"ghcr.io/omertaos/aion-control:1.0.0", "ghcr.io/omertaos/aion-module-host:1.0.0"} <= images
    unbuilt = sorted(image for image in images if "@sha256:" not in image and not stage_for_image(image))
    assert not unbuilt, f"named in deploy/k8s, but no Dockerfile target builds them and no digest pins them: {unbuilt}"
    assert stage_for_image("ghcr.io/omertaos/aion-control:1.0.0") == "runtime"
    assert stage_for_image("ghcr.io/omertaos/aion-module-host:1.0.0") == "module-host"
    assert stage_for_image("ghcr.io/omertaos/aion-node-agent:1.0.0") == "node-agent"


def test_compose_builds_its_own_images_from_the_matching_target_and_tags_the_stock_ones():
    """compose.yaml: a service that builds (``build:``) gets the target whose title is its image's name; ``build: .``
    without a target is the last stage. Its stock data-service images (postgres, redis, ...) come from their
    publishers: they must name an exact tag here, or a digest."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    last_stage = list(dockerfile_stages())[-1]
    built = 0
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if "build" in service:
            build = service["build"] if isinstance(service["build"], dict) else {"context": service["build"]}
            target = build.get("target", last_stage)
            assert stage_titles().get(target) == image_repository_name(image), f"{name}: builds {target!r} but tags it {image!r}"
            built += 1
        else:
            tag = image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
            assert "@sha256:" in image or (tag and tag != "latest"), f"{name}: {image!r} names neither a version nor a digest"
    assert built >= 4  # migrate, web, worker, beat


def test_the_last_stage_is_the_control_plane_so_a_plain_build_makes_aion_control():
    assert list(dockerfile_stages())[-1] == "runtime"
    assert dockerfile_web_command()[0] == "uvicorn"
