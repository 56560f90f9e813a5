"""``manage.py router_train``: --dry-run stores nothing, a promoted run activates a revision carrying its report."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from aion.models import AuditRecord
from router.models import PolicyRevision
from router.policy_store import active_policy
from router.services import bootstrap_policy
from router.tests.training_samples import TRAINING_POLICY, store_samples

pytestmark = pytest.mark.django_db


def test_dry_run_writes_the_report_and_stores_nothing(policy_file, tmp_path, capsys):
    policy_file.write(TRAINING_POLICY)
    bootstrap_policy()
    store_samples(100)
    out = tmp_path / "report.json"
    call_command("router_train", "--since", "7d", "--dry-run", "--output", str(out))
    body = json.loads(out.read_text())
    assert body["decision"] == "promote" and body["dry_run"] is True and body["revision"] is None
    assert "fast-b" in body["candidate"]
    assert PolicyRevision.objects.count() == 1
    assert "dry run: nothing stored" in capsys.readouterr().out


def test_a_promoted_run_activates_a_training_revision(policy_file):
    policy_file.write(TRAINING_POLICY)
    bootstrap_policy()
    store_samples(100)
    call_command("router_train", "--since", "2d")
    revision = PolicyRevision.objects.get(source="training")
    assert active_policy(max_age_seconds=0).revision == revision.number
    assert revision.training_report["samples"]["total"] == 200
    assert AuditRecord.objects.filter(action="router.policy.activate").exists()


def test_a_bad_window_is_a_command_error(policy_file):
    policy_file.write(TRAINING_POLICY)
    with pytest.raises(CommandError):
        call_command("router_train", "--since", "yesterday")
