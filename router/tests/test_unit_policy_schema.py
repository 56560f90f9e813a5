"""The policy schema and loader: the shipped file is valid; errors name each offending field's path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from router.policy import PolicyInvalid, parse_policy


def test_the_shipped_policy_is_valid_and_the_schema_is_a_json_schema():
    policy = parse_policy((Path(settings.BASE_DIR) / "policies" / "router.yml").read_text())
    assert policy.rules and policy.targets and policy.default.candidates
    schema = json.loads((Path(settings.BASE_DIR) / "docs" / "router-policy.schema.json").read_text())
    assert schema["additionalProperties"] is False


def errors_of(text: str) -> dict[str, list[str]]:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text)
    return info.value.errors


def test_unknown_keys_are_errors_with_their_path():
    errors = errors_of(
        """
version: 1
targets: [{name: a, kind: module, endpont: "http://x"}]
rules: [{name: r, match: {intnet: "chat.*"}, choice: {candidates: [a]}}]
default: {candidates: [a], stratgy: latency}
"""
    )
    assert errors["targets.0.endpont"] == ["unknown key 'endpont'"]
    assert errors["rules.0.match.intnet"] == ["unknown key 'intnet'"]
    assert errors["default.stratgy"] == ["unknown key 'stratgy'"]


def test_bad_values_and_unknown_target_names_give_paths():
    errors = errors_of(
        """
version: 1
targets:
  - {name: a, kind: module, endpoint: "http://x"}
  - {name: p, kind: provider, base_url: "http://y", model: m}
rules:
  - {name: r, choice: {strategy: fastest, candidates: [a, typo-target], fallbacks: [missing]}}
default: {candidates: [a], route: sideways}
"""
    )
    assert any("price_per_1k_tokens" in m for m in errors["targets.1"])
    assert "rules.0.choice.strategy" in errors
    assert "default.route" in errors


def test_cross_reference_errors_after_a_schema_valid_document():
    errors = errors_of(
        """
version: 1
targets: [{name: a, kind: module, endpoint: "http://x"}, {name: a, kind: module, endpoint: "http://z"}]
rules: [{name: r, choice: {candidates: [a, typo-target], fallbacks: [missing]}}]
default: {candidates: ["module:*", a]}
"""
    )
    assert errors["targets.1.name"] == ["duplicate target name 'a'"]
    assert errors["rules.0.choice.candidates.1"] == ["unknown target 'typo-target'"]
    assert errors["rules.0.choice.fallbacks.0"] == ["unknown target 'missing'"]


@pytest.mark.parametrize("text", ["{not yaml: [", "", "- a list", "version: 2\ntargets: []\ndefault: {candidates: [a]}"])
def test_garbage_is_invalid_not_a_crash(text):
    assert errors_of(text)
