"""The learning loop's API: POST /v1/router/policy/train, POST /v1/router/policy/revisions and the reload of a
submitted revision (POST /v1/router/policy/reload {"revision": N}); audit, events, and who may call them."""

from __future__ import annotations

import pytest

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import api_client, client_with_roles
from aion.testing.router_targets import events
from aion.topics import ROUTER_POLICIES
from router.models import PolicyRevision
from router.policy import parse_policy
from router.policy_store import active_policy
from router.tests.training_samples import TRAINING_POLICY, store_samples

pytestmark = pytest.mark.django_db


@pytest.fixture()
def admin():
    return client_with_roles([Role.ROUTER_ADMIN])


@pytest.fixture()
def bootstrapped(admin, policy_file):
    policy_file.write(TRAINING_POLICY)
    assert admin.post("/v1/router/policy/reload").status_code == 201
    return policy_file


def test_train_submit_and_reload_make_the_trained_revision_active_with_its_report(admin, bootstrapped):
    store_samples(100)
    trained = admin.post("/v1/router/policy/train", {"since": "7d"}, format="json")
    assert trained.status_code == 200, trained.json()
    body = trained.json()
    assert body["decision"] == "promote", body["report"]
    assert body["report"]["samples"]["total"] == 200
    assert PolicyRevision.objects.count() == 1  # training stores nothing

    submitted = admin.post("/v1/router/policy/revisions", {"content": body["candidate"], "report": body["report"]}, format="json")
    assert submitted.status_code == 201, submitted.json()
    number = submitted.json()["revision"]["revision"]
    assert submitted.json()["revision"]["pending"] is True
    assert active_policy().revision == 1  # pending until the reload names it
    again = admin.post("/v1/router/policy/revisions", {"content": body["candidate"]}, format="json")
    assert again.status_code == 200 and again.json()["revision"]["revision"] == number  # a retry stores nothing new

    reload = admin.post("/v1/router/policy/reload", {"revision": number}, format="json")
    assert reload.status_code == 201, reload.json()
    assert active_policy().revision == number
    weights = {c.target: c.weight for c in active_policy().default.candidates}
    assert weights["fast-b"] > weights["slow-a"]
    revision = PolicyRevision.objects.get(number=number)
    assert revision.source == "training" and revision.pending is False
    assert revision.training_report["decision"] == "promote"
    assert AuditRecord.objects.filter(action="router.policy.submit", resource_id=str(number)).exists()
    assert AuditRecord.objects.filter(action="router.policy.activate", resource_id=str(number)).exists()
    types = [(e["type"], e["data"].get("revision")) for e in events(ROUTER_POLICIES)]
    assert ("router.policy.submitted", number) in types
    assert types[-1] == ("router.policy.changed", number)
    assert admin.post("/v1/router/policy/reload", {"revision": number}, format="json").status_code == 200  # already active

    page = admin.get("/v1/router/policy").json()
    assert page["active"]["training_report"]["decision"] == "promote"


def test_reload_refuses_unknown_and_already_used_revisions_and_a_bad_submission(admin, bootstrapped):
    assert admin.post("/v1/router/policy/reload", {"revision": 99}, format="json").status_code == 404
    bootstrapped.write(TRAINING_POLICY.replace("seed: 7", "seed: 8"))
    assert admin.post("/v1/router/policy/reload").status_code == 201  # the file-based reload stays
    refused = admin.post("/v1/router/policy/reload", {"revision": 1}, format="json")
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("revision-not-pending")
    assert admin.post("/v1/router/policy/reload", {"revision": "x"}, format="json").status_code == 400
    bad = admin.post("/v1/router/policy/revisions", {"content": "version: 1\ntargets: []\nstratgy: x\n"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"]
    assert admin.post("/v1/router/policy/revisions", {}, format="json").status_code == 400


def test_train_with_too_few_samples_is_no_change_and_a_bad_window_is_400(admin, bootstrapped):
    store_samples(3)
    body = admin.post("/v1/router/policy/train", {"since": "1d"}, format="json").json()
    assert body["decision"] == "no-change"
    parse_policy(TRAINING_POLICY)
    assert admin.post("/v1/router/policy/train", {"since": "soon"}, format="json").status_code == 400
    assert admin.post("/v1/router/policy/train", {"since": "1d", "until": "2000-01-01T00:00:00Z"}, format="json").status_code == 400


def test_the_loop_needs_router_admin():
    auditor = client_with_roles([Role.AUDITOR])
    wrong = client_with_roles([Role.MODULES_ADMIN])
    for path in ("/v1/router/policy/train", "/v1/router/policy/revisions"):
        assert api_client().post(path, {}, format="json").status_code == 401
        assert wrong.post(path, {}, format="json").status_code == 403
        assert auditor.post(path, {}, format="json").status_code == 403
    assert auditor.post("/v1/router/policy/reload", {"revision": 1}, format="json").status_code == 403
