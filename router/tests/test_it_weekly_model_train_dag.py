"""The weekly_model_train DAG on a real Airflow 3 (its own virtualenv, scripts/airflow_env.py).

- The DAG folder loads in a ``DagBag`` with no import errors: dag_id, weekly schedule, tags, retries.
- ``dag.test()`` runs the whole DAG, in a subprocess with the Airflow venv's python and an environment without
  any of the product's settings, against a served instance of the product (the Dockerfile's web command on
  this run's test database) holding samples: it ends with a new training revision, active, its report stored.

With CI=true a missing Airflow (the venv cannot be built) fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import make_api_key
from aion.testing.processes import ROOT, ServedInstance, serve, stop
from aion.testing.services import service_missing
from router.models import PolicyRevision, PolicyState
from router.services import bootstrap_policy
from router.tests.training_samples import TRAINING_POLICY, store_samples

DAGS = ROOT / "bigdata" / "airflow" / "dags"
RUNNER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.get_dag("weekly_model_train")
print("DAGBAG " + json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "schedule": str(getattr(dag, "schedule", "")) if dag else None,
    "tags": sorted(dag.tags) if dag else [],
    "retries": [t.retries for t in dag.tasks] if dag else [],
    "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
}), flush=True)
if len(sys.argv) > 2 and sys.argv[2] == "test":
    run = dag.test()
    print("DAG_STATE " + str(run.state if run else None), flush=True)
"""


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    try:
        built = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "airflow_env.py")], capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        service_missing("Airflow", "scripts/airflow_env.py did not finish within 15 minutes")
    if built.returncode != 0:
        service_missing("Airflow", f"scripts/airflow_env.py failed: {built.stderr[-2000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


def airflow_env(home: Path, python: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing of the product's (no DJANGO_SETTINGS_MODULE, DATABASE_URL...), a copied metadata db."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(python.parent.parent / "home-template" / "airflow.db", home / "airflow.db")
    return {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(home)),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        **extra,
    }


def run_dag(python: Path, env: dict[str, str], *args: str, timeout: float) -> tuple[dict, str]:
    done = subprocess.run([str(python), "-c", RUNNER, str(DAGS), *args], env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("DAGBAG ")]
    assert done.returncode == 0 and lines, output[-6000:]
    return json.loads(lines[0][len("DAGBAG ") :]), output


def test_the_dag_loads_in_a_dagbag_with_no_import_errors(airflow_python, tmp_path):
    bag, _ = run_dag(airflow_python, airflow_env(tmp_path / "home", airflow_python), timeout=300)
    assert bag["errors"] == {}
    assert bag["dag_ids"] == ["weekly_model_train"]
    assert bag["tags"] == ["aion", "router", "training"]
    assert bag["tasks"] == ["export_samples", "promote", "reload", "train"]
    assert all(retries == 2 for retries in bag["retries"])
    assert "weekly" in bag["schedule"].lower() or "0 0 * * 0" in bag["schedule"]


@pytest.fixture()
def served(tmp_path, policy_file) -> Iterator[ServedInstance]:
    policy_file.write(TRAINING_POLICY)
    instance = serve(tmp_path, AION_ROUTER_POLICY_PATH=str(policy_file.path), CELERY_BROKER_URL="memory://")
    yield instance
    stop(instance.process)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_dag_test_runs_the_whole_loop_against_the_served_product(airflow_python, served, tmp_path):
    bootstrap_policy()
    store_samples(100)
    key, _ = make_api_key([Role.ROUTER_ADMIN], name="airflow weekly_model_train")
    connection = json.dumps({"conn_type": "http", "host": served.url("").rstrip("/"), "password": key})
    export_dir = tmp_path / "export"
    env = airflow_env(tmp_path / "home", airflow_python, AIRFLOW_CONN_AION_CONTROL=connection, AION_TRAIN_EXPORT_DIR=str(export_dir))
    _, output = run_dag(airflow_python, env, "test", timeout=540)
    assert "DAG_STATE success" in output, output[-6000:] + served.log()[-3000:]

    trained = PolicyRevision.objects.get(source="training")
    assert PolicyState.objects.get(pk=1).active_number == trained.number  # the reload activated it
    assert trained.pending is False
    assert trained.training_report["decision"] == "promote"
    assert trained.training_report["samples"]["total"] == 200
    assert trained.author.startswith("key:")
    assert AuditRecord.objects.filter(action="router.policy.submit", resource_id=str(trained.number)).exists()
    assert AuditRecord.objects.filter(action="router.policy.activate", resource_id=str(trained.number)).exists()
    exported = [json.loads(line) for path in export_dir.glob("samples-*.jsonl") for line in path.read_text().splitlines()]
    assert len(exported) == 200 and {s["target"] for s in exported} == {"slow-a", "fast-b"}
