"""The guardrail policy loader: the YAML at AION_KERNEL_POLICY_PATH, validated, with the last good copy kept.

``current_policy()`` re-reads the file when its mtime or size changes, so an edit takes
effect without a restart. An invalid file never replaces the last good policy; the
error is reported through ``policy_health()`` (the ``kernel_policy`` entry in /readyz).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.conf import settings

VALUE_TYPES = ("integer", "number", "boolean", "string", "enum")


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
    """Validate a loaded YAML document; raise PolicyError listing every problem."""
    import hashlib
    import json

    errors: list[str] = []
    if not isinstance(data, dict):
        raise PolicyError(["the policy must be a mapping"])

    def integer(name: str, default: int | None, minimum: int = 1) -> int:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            errors.append(f"{name} must be an integer >= {minimum}")
            return default or minimum
        return value

    max_ttl = integer("max_ttl_seconds", None)
    default_ttl = integer("default_ttl_seconds", min(max_ttl, 86400))
    if default_ttl > max_ttl:
        errors.append("default_ttl_seconds must not exceed max_ttl_seconds")
    max_risk = data.get("max_risk_score", 1.0)
    if isinstance(max_risk, bool) or not isinstance(max_risk, int | float) or not 0 <= max_risk <= 1:
        errors.append("max_risk_score must be a number between 0 and 1")
        max_risk = 1.0

    bands: list[tuple[float, int]] = []
    raw_bands = data.get("approval_bands")
    if not isinstance(raw_bands, list) or not raw_bands:
        errors.append("approval_bands must be a non-empty list of {min_risk, required_approvals}")
        raw_bands = []
    for index, band in enumerate(raw_bands):
        if not isinstance(band, dict):
            errors.append(f"approval_bands[{index}] must be a mapping")
            continue
        min_risk, required = band.get("min_risk"), band.get("required_approvals")
        if isinstance(min_risk, bool) or not isinstance(min_risk, int | float) or not 0 <= min_risk <= 1:
            errors.append(f"approval_bands[{index}].min_risk must be a number between 0 and 1")
            continue
        if isinstance(required, bool) or not isinstance(required, int) or not 1 <= required <= 10:
            errors.append(f"approval_bands[{index}].required_approvals must be an integer from 1 to 10")
            continue
        bands.append((float(min_risk), required))
    if bands:
        if bands[0][0] != 0:
            errors.append("approval_bands must start at min_risk 0")
        if any(b[0] >= a[0] for b, a in itertools.pairwise(bands)):
            errors.append("approval_bands must be in ascending min_risk order")

    auto_apply = data.get("auto_apply", True)
    if not isinstance(auto_apply, bool):
        errors.append("auto_apply must be true or false")
        auto_apply = True
    breakglass = data.get("breakglass") or {}
    if not isinstance(breakglass, dict):
        errors.append("breakglass must be a mapping")
        breakglass = {}
    bg_enabled = breakglass.get("enabled", True)
    if not isinstance(bg_enabled, bool):
        errors.append("breakglass.enabled must be true or false")
        bg_enabled = False
    bg_min = breakglass.get("min_justification_length", 20)
    if isinstance(bg_min, bool) or not isinstance(bg_min, int) or bg_min < 1:
        errors.append("breakglass.min_justification_length must be an integer >= 1")
        bg_min = 20

    scopes: dict[str, ScopeRule] = {}
    raw_scopes = data.get("scopes")
    if not isinstance(raw_scopes, dict) or not raw_scopes:
        errors.append("scopes must be a non-empty mapping of scope name to {keys}")
        raw_scopes = {}
    for scope_name, scope in raw_scopes.items():
        if not isinstance(scope_name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", scope_name):
            errors.append(f"scope name {scope_name!r} must match [a-z][a-z0-9_]*")
            continue
        if not isinstance(scope, dict) or not isinstance(scope.get("keys"), dict):
            errors.append(f"scopes.{scope_name}.keys must be a mapping")
            continue
        keys: dict[str, KeyRule] = {}
        for key, rule in scope["keys"].items():
            where = f"scopes.{scope_name}.keys.{key}"
            if not isinstance(key, str) or not key or len(key) > 200:
                errors.append(f"{where}: key names must be strings of 1-200 characters")
                continue
            if not isinstance(rule, dict) or rule.get("type") not in VALUE_TYPES:
                errors.append(f"{where}.type must be one of {', '.join(VALUE_TYPES)}")
                continue
            try:
                keys[key] = _key_rule(rule)
            except PolicyError as exc:
                errors.extend(f"{where}: {message}" for message in exc.errors)
        scopes[scope_name] = ScopeRule(scope_name, str(scope.get("description", "")), keys)

    if errors:
        raise PolicyError(errors)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return Policy(
        max_ttl_seconds=max_ttl,
        default_ttl_seconds=default_ttl,
        max_risk_score=float(max_risk),
        approval_bands=tuple(bands),
        auto_apply=auto_apply,
        breakglass_enabled=bg_enabled,
        breakglass_min_justification=bg_min,
        scopes=scopes,
        source=source,
        sha256=digest,
        raw=data,
    )


def _key_rule(rule: dict[str, Any]) -> KeyRule:
    errors: list[str] = []
    kind = rule["type"]
    bounds: dict[str, float | None] = {}
    for name in ("min", "max"):
        value = rule.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            errors.append(f"{name} must be a number")
            value = None
        bounds[name] = value
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        errors.append("min must not exceed max")
    choices = rule.get("choices") or []
    if kind == "enum" and (not isinstance(choices, list) or not choices):
        errors.append("enum keys need a non-empty choices list")
        choices = []
    pattern = rule.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            errors.append(f"pattern is not a valid regular expression: {exc}")
    max_length = rule.get("max_length")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        errors.append("max_length must be an integer >= 1")
    if errors:
        raise PolicyError(errors)
    return KeyRule(
        type=kind,
        min=bounds["min"],
        max=bounds["max"],
        choices=tuple(choices),
        pattern=str(pattern) if pattern is not None else None,
        max_length=max_length,
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
