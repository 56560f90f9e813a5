"""The env helpers: typed values, *_FILE secrets, and loud failures naming the variable; what importing settings does."""

import ast
import json
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from aion import env
from aion.testing.processes import ROOT, django_setup_in_subprocess, subprocess_env


def test_integer_names_the_variable_on_a_bad_value(monkeypatch):
    monkeypatch.setenv("AION_SOMETHING", "twelve")
    with pytest.raises(ImproperlyConfigured, match="AION_SOMETHING must be an integer"):
        env.integer("AION_SOMETHING", 1)


def test_boolean_rejects_junk(monkeypatch):
    monkeypatch.setenv("AION_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="AION_FLAG"):
        env.boolean("AION_FLAG")


def test_file_variant_supplies_secrets(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.delenv("AION_PASSWORDISH", raising=False)
    monkeypatch.setenv("AION_PASSWORDISH_FILE", str(secret))
    assert env.string("AION_PASSWORDISH") == "s3cr3t"


def test_bounds_are_checked(monkeypatch):
    monkeypatch.setenv("AION_N", "0")
    with pytest.raises(ImproperlyConfigured, match="AION_N must be >= 1"):
        env.integer("AION_N", 5, minimum=1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("AION_MEMORY_MAX_CHUNK_BYTES", "lots"),
        ("AION_ENV", "staging"),
        ("REDIS_URL", "http://x"),
        ("AION_WEBHOOK_BACKOFF_SECONDS", "10,1m"),
        ("AION_RATE_LIMIT_WRITE", "lots"),
    ],
)
def test_settings_fail_loudly_at_start_up(name, value, tmp_path):
    result = django_setup_in_subprocess({"AION_VAR_DIR": str(tmp_path), name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


def test_debug_is_off_by_default(settings):
    assert settings.DEBUG is False


def test_a_bad_list_item_names_its_variable(monkeypatch):
    monkeypatch.setenv("AION_WEBHOOK_BACKOFF_SECONDS", "10,1m")
    with pytest.raises(ImproperlyConfigured, match=r"AION_WEBHOOK_BACKOFF_SECONDS must be a comma-separated list of integers, got '1m'"):
        env.integer_list("AION_WEBHOOK_BACKOFF_SECONDS", "10,60")
    monkeypatch.setenv("AION_WEBHOOK_BACKOFF_SECONDS", "10,-1")
    with pytest.raises(ImproperlyConfigured, match="AION_WEBHOOK_BACKOFF_SECONDS items must be >= 0"):
        env.integer_list("AION_WEBHOOK_BACKOFF_SECONDS", "10,60", minimum=0)
    monkeypatch.setenv("AION_WEBHOOK_BACKOFF_SECONDS", " 5, 30 ,")
    assert env.integer_list("AION_WEBHOOK_BACKOFF_SECONDS", "10,60") == [5, 30]


def test_starting_django_writes_nothing_to_disk(tmp_path):
    """Settings only name AION_VAR_DIR and what lives in it; folders and the dev secret key come at first use."""
    var_dir = tmp_path / "absent"
    result = django_setup_in_subprocess({"AION_VAR_DIR": str(var_dir)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not var_dir.exists(), sorted(str(p) for p in var_dir.rglob("*"))


def test_the_dev_secret_key_is_generated_at_first_use_and_then_kept(tmp_path):
    path = tmp_path / "var" / "secret_key"
    key = env.generated_secret(path)
    assert not path.exists()  # nothing read it yet
    assert len(str(key)) >= 50 and path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
    assert env.generated_secret(path) == str(key) == path.read_text()  # the next process reads the same key
    assert list(path.parent.iterdir()) == [path]  # no draft left behind


def _settings_source() -> ast.Module:
    return ast.parse((ROOT / "aion" / "settings.py").read_text())


def test_the_beat_schedule_is_built_in_one_place():
    def touches_the_schedule(node: ast.AST) -> bool:
        if isinstance(node, ast.Assign | ast.AugAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            return ast.unparse(target).split("[")[0] == "CELERY_BEAT_SCHEDULE"
        return isinstance(node, ast.Call) and ast.unparse(node.func).startswith("CELERY_BEAT_SCHEDULE.")

    writes = [node for node in ast.walk(_settings_source()) if touches_the_schedule(node)]
    assert len(writes) == 1, [ast.unparse(node) for node in writes]
    assert {"router-requeue-stale-tasks", "clickhouse-export", "outbox-relay"} <= set(django_settings.CELERY_BEAT_SCHEDULE)


@pytest.mark.parametrize("module", ["settings.py", "metrics.py"])
def test_settings_and_metrics_read_the_environment_only_through_env(module):
    source = (ROOT / "aion" / module).read_text()
    assert "os.environ" not in source and "os.getenv" not in source


def test_production_settings_have_no_test_branch():
    names = {node.id for node in ast.walk(_settings_source()) if isinstance(node, ast.Name)}
    assert "TESTING" not in names


def _limits_in_a_child(env: dict[str, str]) -> dict[str, str]:
    code = "import django; django.setup(); from django.conf import settings; import json; print(json.dumps(settings.AION_RATE_LIMITS))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_test_layer_reaches_this_run_and_the_processes_it_starts(tmp_path):
    assert django_settings.SETTINGS_MODULE == "aion.settings_test"
    child = {k: v for k, v in subprocess_env().items() if not k.startswith("AION_RATE_LIMIT")}
    assert set(_limits_in_a_child(child).values()) == {"1000000/60"}  # a served process of a test gets the test limits
    production = _limits_in_a_child({**child, "DJANGO_SETTINGS_MODULE": "aion.settings", "AION_VAR_DIR": str(tmp_path)})
    assert production["default"] == "600/60" and production["write"] == "120/60"
