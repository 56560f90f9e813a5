"""scripts/deploy_dags.sh on a scratch git repository with two DAG release tags.

dags-v1 is annotated (stable), dags-v2 lightweight (a candidate): --tag installs either exactly as tagged
(files added later and removed files follow the tag), --last-stable picks dags-v1 until
bigdata/airflow/STABLE names dags-v2. Unknown tags and bad arguments fail without touching the folder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aion.testing.processes import ROOT

SCRIPT = ROOT / "scripts" / "deploy_dags.sh"
DAGS = Path("bigdata/airflow/dags")


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env={**os.environ, **env}, check=True)
    return done.stdout


def deploy(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=repo, capture_output=True, text=True, timeout=60)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / DAGS).mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / DAGS / "weekly_model_train.py").write_text("VERSION = 1\n")
    (repo / DAGS / "old_only.py").write_text("GONE_IN_V2 = True\n")
    (repo / "README").write_text("not a DAG\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "dags v1")
    git(repo, "tag", "-a", "dags-v1", "-m", "stable DAG release 1")
    (repo / DAGS / "weekly_model_train.py").write_text("VERSION = 2\n")
    (repo / DAGS / "old_only.py").unlink()
    (repo / DAGS / "new_in_v2.py").write_text("NEW = True\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "dags v2")
    git(repo, "tag", "dags-v2")  # lightweight: a candidate, not marked stable
    (repo / DAGS / "weekly_model_train.py").write_text("VERSION = 'unreleased'\n")  # the working tree does not matter
    return repo


def test_tag_installs_the_folder_as_it_was_at_that_tag(repo, tmp_path):
    target = tmp_path / "airflow" / "dags"
    target.parent.mkdir()
    done = deploy(repo, "--tag", "dags-v2", "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert (target / "weekly_model_train.py").read_text() == "VERSION = 2\n"
    assert sorted(p.name for p in target.iterdir()) == [".dags-release", "new_in_v2.py", "weekly_model_train.py"]
    assert "tag=dags-v2" in (target / ".dags-release").read_text()
    done = deploy(repo, "--tag", "dags-v1", "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert (target / "weekly_model_train.py").read_text() == "VERSION = 1\n"
    assert not (target / "new_in_v2.py").exists() and (target / "old_only.py").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["dags"]  # no staging or old folder left


def test_last_stable_is_the_newest_annotated_tag_unless_stable_names_one(repo, tmp_path):
    target = tmp_path / "dags"
    done = deploy(repo, "--last-stable", "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert (target / "weekly_model_train.py").read_text() == "VERSION = 1\n"
    (repo / "bigdata" / "airflow" / "STABLE").write_text("dags-v2\n")
    git(repo, "add", "bigdata/airflow/STABLE")
    git(repo, "commit", "-qm", "mark dags-v2 stable")
    done = deploy(repo, "--last-stable", "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert (target / "weekly_model_train.py").read_text() == "VERSION = 2\n"


def test_unknown_tags_and_bad_arguments_fail_and_leave_the_folder(repo, tmp_path):
    target = tmp_path / "dags"
    assert deploy(repo, "--tag", "dags-v1", "--to", str(target)).returncode == 0
    for args in (["--tag", "dags-v9", "--to", str(target)], ["--tag", "v1", "--to", str(target)], ["--to", str(target)], ["--last-stable"]):
        done = deploy(repo, *args)
        assert done.returncode != 0, args
        assert done.stderr.startswith("deploy_dags:"), done.stderr
    assert (target / "weekly_model_train.py").read_text() == "VERSION = 1\n"
