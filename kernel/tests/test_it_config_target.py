"""GET /v1/kernel/config/{scope} per pool (issue 17): ``?target=`` for readers, the credential's binding for agents."""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client
from aion.testing.kernel_proposals import act, change, persona
from kernel.services import document_sha256
from kernel.tests.hosts_support import agent, applied, post_report, report_body

pytestmark = pytest.mark.django_db


@pytest.fixture()
def history(proposer, admin):
    """1: somaxconn=1024 for all hosts; 2: swappiness=10 for gpu only."""
    first = applied(proposer, admin)
    second = applied(proposer, admin, target="gpu", changes=[change("vm.swappiness", None, 10)])
    return first, second


def test_a_pools_document_folds_its_revisions_and_the_all_hosts_ones(admin, history):
    gpu = admin.client.get("/v1/kernel/config/sysctl?target=gpu").json()
    assert gpu["revision"] == 2 and gpu["target"] == "gpu"
    assert gpu["document"] == {"net.core.somaxconn": 1024, "vm.swappiness": 10}
    assert gpu["sha256"] == document_sha256(gpu["document"])
    cpu = admin.client.get("/v1/kernel/config/sysctl?target=cpu").json()
    assert cpu["revision"] == 1 and cpu["document"] == {"net.core.somaxconn": 1024}
    assert cpu["sha256"] == document_sha256({"net.core.somaxconn": 1024})
    # Without target: the head, as before (every key).
    head = admin.client.get("/v1/kernel/config/sysctl").json()
    assert head["revision"] == 2 and "target" not in head


def test_a_rollback_reverts_only_its_target(admin, history):
    _, second = history
    act(admin, second["id"], "rollback", {"reason": "swappiness hurt the gpu pool"})
    gpu = admin.client.get("/v1/kernel/config/sysctl?target=gpu").json()
    assert gpu["revision"] == 3 and gpu["document"] == {"net.core.somaxconn": 1024} and gpu["kind"] == "rollback"
    assert admin.client.get("/v1/kernel/config/sysctl?target=cpu").json()["revision"] == 1


def test_an_agent_reads_its_pool_and_its_binding_wins_over_the_query(history):
    fleet = agent(pool="gpu")
    body = fleet.client.get("/v1/kernel/config/sysctl?host=cpu-1&pool=cpu&target=cpu").json()
    assert body["target"] == "gpu" and body["revision"] == 2
    # A host-bound key: its host's recorded pool once it reported, else the pool it sends.
    node = agent(host="cpu-1")
    assert node.client.get("/v1/kernel/config/sysctl?pool=gpu").json()["target"] == "gpu"
    post_report(node, "cpu-1", report_body(pool="cpu"))
    assert node.client.get("/v1/kernel/config/sysctl?pool=gpu").json()["target"] == "cpu"


def test_etag_and_304_per_pool(history, proposer, admin):
    fleet = agent(pool="cpu")
    first = fleet.client.get("/v1/kernel/config/sysctl")
    etag = first["ETag"]
    assert fleet.client.get("/v1/kernel/config/sysctl", HTTP_IF_NONE_MATCH=etag).status_code == 304
    applied(proposer, admin, target="gpu", changes=[change("vm.swappiness", 10, 20)])  # another pool: cpu unchanged
    assert fleet.client.get("/v1/kernel/config/sysctl", HTTP_IF_NONE_MATCH=etag).status_code == 304
    applied(proposer, admin, changes=[change("net.core.somaxconn", 1024, 2048)])  # all hosts: cpu changes
    changed = fleet.client.get("/v1/kernel/config/sysctl", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["document"] == {"net.core.somaxconn": 2048}


def test_an_agent_may_read_the_policy_but_not_proposals_or_revisions(history):
    fleet = agent(pool="gpu")
    assert fleet.client.get("/v1/kernel/policy").status_code == 200
    assert fleet.client.get("/v1/kernel/proposals").status_code == 403
    assert fleet.client.get("/v1/kernel/config/sysctl/revisions").status_code == 403
    assert fleet.client.post("/v1/kernel/proposals", {}, format="json").status_code == 403


def test_negative_authorisation(history):
    assert agent().client.get("/v1/kernel/config/sysctl").status_code == 403  # an unbound agent key
    outsider = agent(pool="gpu", tenant=OTHER_TENANT, name="theirs")
    theirs = outsider.client.get("/v1/kernel/config/sysctl").json()  # its own tenant's state: nothing of ours
    assert theirs["revision"] == 0 and theirs["document"] == {}
    teammate = persona([Role.MEMORY_READER], name="teammate")
    assert teammate.client.get("/v1/kernel/config/sysctl?target=gpu").status_code == 403
    assert api_client().get("/v1/kernel/config/sysctl?target=gpu").status_code == 401


def test_a_bad_pool_or_target_is_a_400(history, admin):
    assert agent(host="new-1").client.get("/v1/kernel/config/sysctl?pool=bad pool").status_code == 400
    assert admin.client.get("/v1/kernel/config/sysctl?target=" + "x" * 300).status_code == 400
