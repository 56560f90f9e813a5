"""The guardrail policy loader: the YAML at AION_KERNEL_POLICY_PATH, validated, with the last good copy kept.

``parse_policy`` checks the document against ``docs/kernel-policy.schema.json`` (unknown keys are
errors), then what a schema cannot say (small functions: TTL order, bands, bounds, patterns).

``current_policy()`` re-reads the file when its mtime or size changes, so an edit takes
effect without a restart. An invalid file never replaces the last good policy; the
error is reported through ``policy_health()`` (the ``kernel_policy`` entry in /readyz).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(settings.BASE_DIR) / "docs" / "kernel-policy.schema.json"


class PolicyError(ValueError):
    """The policy file is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class KeyRule:
    """One allowlisted key: its value type and bounds."""

    type: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    pattern: str | None = None
    max_length: int | None = None

    def check(self, value: Any) -> str | None:
        """An error message when VALUE breaks this rule, else None."""
        if self.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return "must be an integer"
        elif self.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return "must be a number"
        elif self.type == "boolean":
            if not isinstance(value, bool):
                return "must be true or false"
        elif self.type == "string":
            if not isinstance(value, str):
                return "must be a string"
            if self.max_length is not None and len(value) > self.max_length:
                return f"must be at most {self.max_length} characters"
            if self.pattern and not re.fullmatch(self.pattern, value):
                return f"must match {self.pattern}"
        elif self.type == "enum" and value not in self.choices:
            return "must be one of " + ", ".join(str(c) for c in self.choices)
        if self.type in ("integer", "number"):
            if self.min is not None and value < self.min:
                return f"must be between {_fmt(self.min)} and {_fmt(self.max)}" if self.max is not None else f"must be >= {_fmt(self.min)}"
            if self.max is not None and value > self.max:
                return f"must be between {_fmt(self.min)} and {_fmt(self.max)}" if self.min is not None else f"must be <= {_fmt(self.max)}"
        return None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for name in ("min", "max", "pattern", "max_length"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.choices:
            out["choices"] = list(self.choices)
        return out


def _fmt(number: float | None) -> str:
    if number is None:
        return ""
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass(frozen=True)
class ScopeRule:
    name: str
    description: str
    keys: dict[str, KeyRule]


@dataclass(frozen=True)
class Policy:
    """A validated guardrail policy."""

    max_ttl_seconds: int
    default_ttl_seconds: int
    max_risk_score: float
    approval_bands: tuple[tuple[float, int], ...]  # (min_risk, required_approvals), ascending
    auto_apply: bool
    breakglass_enabled: bool
    breakglass_min_justification: int
    scopes: dict[str, ScopeRule]
    source: str = ""
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def required_approvals(self, risk_score: float) -> int:
        required = self.approval_bands[0][1]
        for min_risk, approvals in self.approval_bands:
            if risk_score >= min_risk:
                required = approvals
        return required


def parse_policy(data: Any, source: str = "") -> Policy:
    """Validate a loaded YAML document against the schema, then what it cannot say; raise PolicyError listing every problem."""
    errors = _schema_errors(data)
    if errors:
        raise PolicyError(errors)
    bands = tuple((float(band["min_risk"]), int(band["required_approvals"])) for band in data["approval_bands"])
    max_ttl = int(data["max_ttl_seconds"])
    default_ttl = int(data.get("default_ttl_seconds", min(max_ttl, 86400)))
    breakglass = data.get("breakglass") or {}
    errors = [*_ttl_errors(max_ttl, default_ttl), *_band_errors(bands)]
    scopes: dict[str, ScopeRule] = {}
    for scope_name, scope in data["scopes"].items():
        keys: dict[str, KeyRule] = {}
        for key, rule in scope["keys"].items():
            key_errors = _key_rule_errors(rule)
            errors.extend(f"scopes.{scope_name}.keys.{key}: {message}" for message in key_errors)
            if not key_errors:
                keys[key] = _key_rule(rule)
        scopes[scope_name] = ScopeRule(scope_name, str(scope.get("description", "")), keys)
    if errors:
        raise PolicyError(errors)
    return Policy(
        max_ttl_seconds=max_ttl,
        default_ttl_seconds=default_ttl,
        max_risk_score=float(data.get("max_risk_score", 1.0)),
        approval_bands=bands,
        auto_apply=data.get("auto_apply", True),
        breakglass_enabled=breakglass.get("enabled", True),
        breakglass_min_justification=int(breakglass.get("min_justification_length", 20)),
        scopes=scopes,
        source=source,
        sha256=hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest(),
        raw=data,
    )


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _schema_errors(data: Any) -> list[str]:
    """Every schema violation as "dotted.path: message" (an unknown key and a missing one named by their own path)."""
    errors: list[str] = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = [str(part) for part in error.absolute_path]
        if error.validator == "additionalProperties" and isinstance(error.instance, dict) and "properties" in error.schema:
            errors.extend(f"{_path([*path, key])}: unknown key" for key in sorted(set(error.instance) - set(error.schema["properties"])))
        elif error.validator == "required" and isinstance(error.instance, dict):
            errors.extend(f"{_path([*path, name])}: is required" for name in error.validator_value if name not in error.instance)
        else:
            errors.append(f"{_path(path)}: {error.message}")
    return errors


def _path(parts: list[str]) -> str:
    return ".".join(parts) or "(root)"


def _ttl_errors(max_ttl: int, default_ttl: int) -> list[str]:
    return ["default_ttl_seconds: must not exceed max_ttl_seconds"] if default_ttl > max_ttl else []


def _band_errors(bands: tuple[tuple[float, int], ...]) -> list[str]:
    """The bands cover every risk: they start at 0 and rise (the band with the highest min_risk <= risk applies)."""
    errors = []
    if bands[0][0] != 0:
        errors.append("approval_bands: must start at min_risk 0")
    if any(later[0] <= earlier[0] for earlier, later in itertools.pairwise(bands)):
        errors.append("approval_bands: must be in ascending min_risk order")
    return errors


def _key_rule_errors(rule: dict[str, Any]) -> list[str]:
    """What the schema cannot check of one key's rule: its bounds' order and its pattern."""
    errors = []
    if rule.get("min") is not None and rule.get("max") is not None and rule["min"] > rule["max"]:
        errors.append("min must not exceed max")
    if rule.get("pattern") is not None:
        try:
            re.compile(rule["pattern"])
        except re.error as exc:
            errors.append(f"pattern is not a valid regular expression: {exc}")
    return errors


def _key_rule(rule: dict[str, Any]) -> KeyRule:
    return KeyRule(
        type=rule["type"],
        min=rule.get("min"),
        max=rule.get("max"),
        choices=tuple(rule.get("choices") or ()),
        pattern=rule.get("pattern"),
        max_length=rule.get("max_length"),
    )


class PolicyLoader:
    """Caches the policy per path; reloads on change; keeps the last good one when a reload fails."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: str | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._good: Policy | None = None
        self._error: str | None = None

    def current(self) -> Policy | None:
        path = str(settings.AION_KERNEL_POLICY_PATH)
        try:
            stat = os.stat(path)
            stamp: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            stamp = None
        with self._lock:
            if path != self._path:
                # A different file (tests, reconfiguration): nothing from the old one applies.
                self._path, self._stamp, self._good, self._error = path, None, None, None
            if stamp is None:
                self._error = f"cannot read {path}"
                self._stamp = None
                return self._good
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    with open(path, encoding="utf-8") as handle:
                        data = yaml.safe_load(handle)
                    self._good = parse_policy(data, source=path)
                    self._error = None
                except (OSError, yaml.YAMLError, PolicyError) as exc:
                    self._error = str(exc)[:1000]
            return self._good

    def health(self) -> dict[str, Any]:
        policy = self.current()
        if policy is None:
            return {"status": "down", "path": self._path, "error": self._error or "no policy loaded"}
        if self._error:
            return {"status": "degraded", "path": self._path, "error": self._error, "serving_sha256": policy.sha256}
        return {"status": "ok", "path": self._path, "sha256": policy.sha256, "scopes": sorted(policy.scopes)}

    def last_error(self) -> str | None:
        self.current()
        return self._error


LOADER = PolicyLoader()


def current_policy() -> Policy | None:
    return LOADER.current()


def policy_health() -> dict[str, Any]:
    return LOADER.health()
