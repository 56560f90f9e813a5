"""The guardrail policy loader: validation, hot reload, last good policy kept, /readyz entry."""

from __future__ import annotations

import pytest

from aion.testing.kernel_proposals import SHIPPED_POLICY, proposal_body
from kernel.policy import PolicyError, current_policy, parse_policy, policy_health

pytestmark = pytest.mark.django_db

HEAD = "max_ttl_seconds: 60\napproval_bands: [{min_risk: 0, required_approvals: 1}]\n"


def test_the_shipped_policy_allows_the_documented_examples():
    import yaml

    policy = parse_policy(yaml.safe_load(SHIPPED_POLICY.read_text()))
    sysctl = policy.scopes["sysctl"].keys
    assert sysctl["net.core.somaxconn"].check(128) is None and sysctl["net.core.somaxconn"].check(65535) is None
    assert sysctl["net.core.somaxconn"].check(127) and sysctl["net.core.somaxconn"].check(65536)
    assert sysctl["vm.swappiness"].check(0) is None and sysctl["vm.swappiness"].check(101)
    assert policy.required_approvals(0.49) == 1 and policy.required_approvals(0.5) == 2
    assert {"sysctl", "network", "kernel_module"} <= set(policy.scopes)


@pytest.mark.parametrize(
    "text",
    [
        "just a string",
        "max_ttl_seconds: 0\napproval_bands: [{min_risk: 0, required_approvals: 1}]\nscopes: {s: {keys: {k: {type: integer}}}}",
        "max_ttl_seconds: 60\napproval_bands: [{min_risk: 0.2, required_approvals: 1}]\nscopes: {s: {keys: {k: {type: integer}}}}",
        HEAD + "scopes: {s: {keys: {k: {type: complex}}}}",
        HEAD + "scopes: {s: {keys: {k: {type: integer, min: 5, max: 1}}}}",
        HEAD + "scopes: {s: {keys: {k: {type: string, pattern: '('}}}}",
    ],
)
def test_invalid_documents_are_refused_with_reasons(text):
    import yaml

    with pytest.raises(PolicyError) as error:
        parse_policy(yaml.safe_load(text))
    assert error.value.errors


def test_an_invalid_edit_keeps_the_last_good_policy_and_shows_in_readyz(policy_file, proposer, client):
    path = policy_file(max_risk_score=0.3)
    assert current_policy().max_risk_score == 0.3
    assert policy_health()["status"] == "ok"

    path.write_text("scopes: {broken: [\n")
    policy = current_policy()
    assert policy is not None and policy.max_risk_score == 0.3  # last good
    health = client.get("/readyz").json()["dependencies"]["kernel_policy"]
    assert health["status"] == "degraded" and health["error"]
    refused = proposer.client.post("/v1/kernel/proposals", proposal_body(risk_score=0.4), format="json")
    assert refused.status_code == 400 and "risk_score" in refused.json()["errors"]

    import yaml

    fixed = yaml.safe_load(SHIPPED_POLICY.read_text())
    fixed["max_risk_score"] = 0.5
    path.write_text(yaml.safe_dump(fixed))
    assert current_policy().max_risk_score == 0.5
    assert policy_health()["status"] == "ok"
    served = proposer.client.get("/v1/kernel/policy").json()
    assert served["status"]["status"] == "ok" and served["policy"]["max_risk_score"] == 0.5


def test_a_missing_file_with_no_good_policy_is_down(settings, tmp_path):
    settings.AION_KERNEL_POLICY_PATH = str(tmp_path / "absent.yaml")
    assert current_policy() is None
    assert policy_health()["status"] == "down"


def test_the_policy_endpoint_negative_authorisation(proposer):
    from aion.rbac import Role
    from aion.testing.factories import api_client, make_api_key

    assert api_client().get("/v1/kernel/policy").status_code == 401
    raw, _ = make_api_key([Role.MEMORY_READER], "acme", name="memory-only")
    denied = api_client(raw).get("/v1/kernel/policy")
    assert denied.status_code == 403 and denied["Content-Type"].startswith("application/problem+json")
    assert proposer.client.post("/v1/kernel/policy", {}, format="json").status_code in (403, 405)
    assert proposer.client.get("/v1/kernel/policy").status_code == 200
