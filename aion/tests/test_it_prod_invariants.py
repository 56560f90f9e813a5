"""AION_ENV=prod refuses to start on an unsafe configuration, with one line naming the variable.

Each case starts a real interpreter (``django.setup()``) with a crafted environment: a fully valid production
environment with exactly one thing wrong. Settings import does no network I/O, so the URLs point at closed ports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aion.testing.processes import ROOT

SETUP = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'aion.settings'); django.setup(); print('started')"
VALID_KEY = "q7Vt2mXc9Lk4Rz8Hw1Ns6Pb3Yd5Fj0Ga-Ue_Ko2Ti9Ml4Xv7Cr1Zs8Qn3"  # 56 characters, made for this test


def _prod_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "AION_VAR_DIR": str(tmp_path / "var"),
        "AION_ENV": "prod",
        "AION_SECRET_KEY": VALID_KEY,
        "DATABASE_URL": "postgres://aion:aion@127.0.0.1:1/aion",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/1",
        "AION_COSIGN_PUBLIC_KEYS": "k2026=/etc/aion/cosign/k2026.pub",
        "AION_METRICS_TOKEN": "a-long-random-metrics-token-0123456789",
    }


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)


def test_a_valid_production_environment_starts(tmp_path):
    result = _start(_prod_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "started" in result.stdout


def test_the_metrics_token_may_come_from_a_file_and_cosign_keys_from_vault(tmp_path):
    token = tmp_path / "metrics-token"
    token.write_text("a-long-random-metrics-token-from-a-file\n")
    env = _prod_env(tmp_path)
    del env["AION_METRICS_TOKEN"], env["AION_COSIGN_PUBLIC_KEYS"]
    result = _start({**env, "AION_METRICS_TOKEN_FILE": str(token), "VAULT_ADDR": "http://127.0.0.1:1"})
    assert result.returncode == 0, result.stderr[-3000:]


UNSET = object()


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("AION_DEBUG", "true", "AION_DEBUG"),
        ("DATABASE_URL", UNSET, "DATABASE_URL"),
        ("DATABASE_URL", "sqlite:////tmp/aion.sqlite3", "DATABASE_URL"),
        ("REDIS_URL", UNSET, "REDIS_URL"),
        ("CELERY_BROKER_URL", UNSET, "CELERY_BROKER_URL"),
        ("CELERY_BROKER_URL", "filesystem://", "CELERY_BROKER_URL"),
        ("CELERY_BROKER_URL", "sqla+sqlite:////tmp/broker.sqlite3", "CELERY_BROKER_URL"),
        ("AION_SECRET_KEY", "short-but-random-7Hq2", "AION_SECRET_KEY"),
        ("AION_SECRET_KEY", "django-insecure-" + "x1y2z3w4" * 6, "AION_SECRET_KEY"),
        ("AION_SECRET_KEY", "changeme" * 7, "AION_SECRET_KEY"),
        ("AION_SECRET_KEY", "local-compose-only-not-a-secret-" + "0123456789" * 2, "AION_SECRET_KEY"),
        ("AION_SECRET_KEY", "a" * 60, "AION_SECRET_KEY"),
        ("AION_SECRET_KEY", UNSET, "AION_SECRET_KEY"),
        ("AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true", "AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
        ("AION_COSIGN_PUBLIC_KEYS", UNSET, "AION_COSIGN_PUBLIC_KEYS"),
        ("AION_METRICS_TOKEN", UNSET, "AION_METRICS_TOKEN"),
        ("AION_METRICS_TOKEN", "  ", "AION_METRICS_TOKEN"),
    ],
)
def test_each_invariant_stops_start_up_with_one_line_naming_the_variable(tmp_path, variable, value, named):
    env = _prod_env(tmp_path)
    if value is UNSET:
        env.pop(variable)
    else:
        env[variable] = str(value)
    result = _start(env)
    assert result.returncode != 0, f"started with {variable}={value!r}"
    assert "started" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr[-3000:]
    assert named in last and "prod" in last, last
    assert VALID_KEY not in result.stderr  # the refusal never echoes a secret


def test_development_keeps_its_embedded_defaults(tmp_path):
    result = _start({"PATH": "/usr/bin:/bin", "AION_VAR_DIR": str(tmp_path / "var"), "AION_ENV": "dev"})
    assert result.returncode == 0, result.stderr[-3000:]
