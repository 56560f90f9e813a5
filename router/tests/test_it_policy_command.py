"""``manage.py router_policy``: reload, rollback, show and bootstrap through the same services as the API."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from router.models import PolicyRevision

pytestmark = pytest.mark.django_db

POLICY = """
version: 1
targets: [{name: local-a, kind: module, endpoint: "http://127.0.0.1:9"}]
default: {route: local, strategy: priority, candidates: [local-a]}
"""


def run(*args: str) -> str:
    out = StringIO()
    call_command("router_policy", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_reload_rollback_and_show(policy_file):
    policy_file.write(POLICY)
    assert run("reload", "--tenant", "acme").startswith("activated: r1")
    assert run("reload").startswith("unchanged: r1")
    policy_file.write(POLICY.replace("priority", "cost"))
    assert run("reload").startswith("activated: r2")
    assert run("rollback", "1").startswith("activated: r3")
    assert run("show").startswith("active: r3")
    assert PolicyRevision.objects.get(number=3).author == "system:manage.py"


def test_an_invalid_file_fails_with_paths(policy_file):
    policy_file.write(POLICY + "typo: 1\n")
    with pytest.raises(CommandError):
        run("reload")
    assert not PolicyRevision.objects.exists()
    with pytest.raises(CommandError):
        run("rollback", "7")


def test_bootstrap_stores_revision_1_once_then_changes_nothing(policy_file):
    policy_file.write(POLICY)
    assert run("bootstrap").startswith("activated: r1")
    assert PolicyRevision.objects.get(number=1).source == "bootstrap"
    policy_file.write(POLICY.replace("priority", "cost"))
    assert run("bootstrap").startswith("unchanged: r1")  # the migrate job runs it on every deploy
    assert PolicyRevision.objects.count() == 1


def test_bootstrap_of_an_invalid_file_fails_and_stores_nothing(policy_file):
    policy_file.write(POLICY + "typo: 1\n")
    with pytest.raises(CommandError):
        run("bootstrap")
    assert not PolicyRevision.objects.exists()
