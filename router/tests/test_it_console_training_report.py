"""Console Router page: the active revision's training report (samples, before/after, decision) and pending submissions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from aion.auth.principal import system_principal
from aion.roles import Role
from aion.testing.factories import make_user
from router import promotion
from router.services import bootstrap_policy
from router.tests.training_samples import TRAINING_POLICY, store_samples

pytestmark = pytest.mark.django_db


def test_the_router_page_shows_the_active_revisions_training_report(policy_file):
    policy_file.write(TRAINING_POLICY)
    bootstrap_policy()
    store_samples(100)
    run = promotion.train_policy(since=timezone.now() - timedelta(days=1)).result
    actor = system_principal("acme", "test")
    revision, _ = promotion.submit_revision(run.candidate or "", report=run.report, actor=actor, tenant_id="acme")
    client = Client()
    client.force_login(make_user("auditor-user", [Role.AUDITOR]))
    pending = client.get("/console/router/").content.decode()
    assert "pending" in pending and f"training-report-r{revision.number}" not in pending
    promotion.activate_revision(revision.number, actor=actor, tenant_id="acme")
    page = client.get("/console/router/").content.decode()
    assert f"training-report-r{revision.number}" in page
    assert "Training report: <strong>promote</strong>" in page
    assert "Samples 200 (trained on 140, held out 60, evaluated 60)" in page
    assert "default: weights" in page
