"""The guardrail policy's schema (docs/kernel-policy.schema.json) and the checks it cannot express.

Every problem is listed, each as "dotted.path: message", so ``kernel_policy_check`` and /readyz
(``kernel_policy: degraded``) say exactly what to fix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from aion.testing.kernel_proposals import SHIPPED_POLICY
from kernel.policy import SCHEMA_PATH, PolicyError, parse_policy


def shipped(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED_POLICY.read_text())
    data.update(overrides)
    return data


def errors_of(data: Any) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(data)
    return info.value.errors


def test_the_schema_is_a_strict_json_schema_and_the_shipped_policy_follows_it():
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    policy = parse_policy(shipped())
    assert policy.max_ttl_seconds == 604800 and policy.breakglass_enabled and policy.breakglass_min_justification == 20


def test_defaults_apply_to_what_the_file_leaves_out():
    policy = parse_policy(
        {"max_ttl_seconds": 3600, "approval_bands": [{"min_risk": 0, "required_approvals": 1}], "scopes": {"s": {"keys": {}}}}
    )
    assert policy.default_ttl_seconds == 3600 and policy.max_risk_score == 1.0
    assert policy.auto_apply is True and policy.breakglass_enabled is True and policy.breakglass_min_justification == 20


def test_unknown_and_missing_keys_are_named_by_their_path():
    data = shipped(auto_aply=False)
    data["scopes"]["sysctl"]["keys"]["vm.swappiness"]["maxx"] = 3
    del data["max_ttl_seconds"]
    data["scopes"]["network"]["keys"]["egress.policy"] = {"type": "enum"}
    errors = errors_of(data)
    assert "auto_aply: unknown key" in errors
    assert "scopes.sysctl.keys.vm.swappiness.maxx: unknown key" in errors
    assert "max_ttl_seconds: is required" in errors
    assert "scopes.network.keys.egress.policy.choices: is required" in errors


def test_wrong_types_and_bounds_are_schema_errors_with_paths():
    errors = errors_of(shipped(max_risk_score=2, auto_apply="yes", approval_bands=[{"min_risk": 0, "required_approvals": 11}]))
    assert any(e.startswith("max_risk_score: ") for e in errors)
    assert any(e.startswith("auto_apply: ") for e in errors)
    assert any(e.startswith("approval_bands.0.required_approvals: ") for e in errors)
    assert any(e.startswith("(root): ") for e in errors_of("just a string"))
    assert any("Bad-Scope" in e for e in errors_of(shipped(scopes={"Bad-Scope": {"keys": {}}})))


def test_booleans_are_not_numbers():
    assert any(e.startswith("max_ttl_seconds: ") for e in errors_of(shipped(max_ttl_seconds=True)))


def test_what_a_schema_cannot_say_is_checked_after_it():
    data = shipped(default_ttl_seconds=10, max_ttl_seconds=5)
    data["approval_bands"] = [{"min_risk": 0.1, "required_approvals": 1}, {"min_risk": 0.1, "required_approvals": 2}]
    data["scopes"]["sysctl"]["keys"]["vm.swappiness"] = {"type": "integer", "min": 5, "max": 1}
    data["scopes"]["network"]["keys"]["dns.servers"] = {"type": "string", "pattern": "("}
    errors = errors_of(data)
    assert "default_ttl_seconds: must not exceed max_ttl_seconds" in errors
    assert "approval_bands: must start at min_risk 0" in errors
    assert "approval_bands: must be in ascending min_risk order" in errors
    assert "scopes.sysctl.keys.vm.swappiness: min must not exceed max" in errors
    assert any(e.startswith("scopes.network.keys.dns.servers: pattern is not a valid regular expression") for e in errors)
