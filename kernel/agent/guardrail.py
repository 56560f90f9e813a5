"""The guardrail policy as the agent checks it (defence in depth): a key is applied only when the policy allows it
in its scope and its value keeps the key's rule. The policy is the ``policy`` object of ``GET /v1/kernel/policy``
(or the same object in a local JSON file, ``--policy-file``); its rules are those of kernel/policy.py."""

from __future__ import annotations

import math
import re
from typing import Any


def refusal(policy: dict[str, Any] | None, scope: str, key: str, value: Any) -> str | None:
    """Why POLICY refuses KEY=VALUE in SCOPE, or None when it allows it. No policy refuses everything."""
    if not isinstance(policy, dict):
        return "refused: no guardrail policy is known to the agent"
    scopes = policy.get("scopes")
    rules = scopes.get(scope) if isinstance(scopes, dict) else None
    if not isinstance(rules, dict):
        return f"refused by the guardrail policy: scope {scope!r} is not allowed"
    keys = rules.get("keys")
    rule = keys.get(key) if isinstance(keys, dict) else None
    if not isinstance(rule, dict):
        return f"refused by the guardrail policy: key {key!r} is not allowed in scope {scope!r}"
    problem = _value_problem(rule, value)
    return f"refused by the guardrail policy: {key} {problem}" if problem else None


def _value_problem(rule: dict[str, Any], value: Any) -> str | None:
    kind = rule.get("type")
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if kind == "integer" and (not number or not isinstance(value, int)):
        return "must be an integer"
    if kind == "number" and (not number or not math.isfinite(value)):
        return "must be a number"
    if kind == "boolean" and not isinstance(value, bool):
        return "must be true or false"
    if kind == "string":
        if not isinstance(value, str):
            return "must be a string"
        if isinstance(rule.get("max_length"), int) and len(value) > rule["max_length"]:
            return f"must be at most {rule['max_length']} characters"
        if rule.get("pattern") and not re.fullmatch(str(rule["pattern"]), value):
            return f"must match {rule['pattern']}"
    if kind == "enum" and value not in (rule.get("choices") or []):
        return "must be one of " + ", ".join(str(c) for c in rule.get("choices") or [])
    if kind not in ("integer", "number", "boolean", "string", "enum"):
        return f"has a rule of unknown type {kind!r}"
    if kind in ("integer", "number"):
        low, high = rule.get("min"), rule.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            return f"must be between {low} and {high}"
    return None
