"""The routing policy as data: the YAML file, its JSON Schema check and the typed, frozen Policy.

``parse_policy(text)`` validates against ``docs/router-policy.schema.json`` (unknown keys
are errors) plus cross-references (every candidate names a declared target), and returns
a frozen ``Policy``. Pure: no database and no cache here. Which revision is active, and this
process's copy of it, is ``router.policy_store``; storing a revision is ``router.services``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from jsonschema import Draft202012Validator

from aion.errors import InvalidInput

SCHEMA_PATH = Path(settings.BASE_DIR) / "docs" / "router-policy.schema.json"


class PolicyInvalid(InvalidInput):
    """The policy text is not valid; ``errors`` maps dotted field paths to messages.

    ``detail`` is the sentence an API or Console caller reads; ``str()`` lists every error (logs, health, commands).
    """

    code = "policy-invalid"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("the router policy is invalid; the active policy is unchanged", errors=errors)
        self.errors: dict[str, list[str]] = errors

    def __str__(self) -> str:
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items())


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # module | provider
    route: str  # local | api
    endpoint: str = ""  # module host base URL
    base_url: str = ""  # provider base URL
    model: str = ""
    price_per_1k_tokens: float = 0.0
    api_key_env: str = ""
    api_key_vault: str = ""
    timeout_ms: int | None = None
    intents: tuple[str, ...] = ()
    health: str = "unknown"  # from the module registry: up | degraded | down | unknown
    from_registry: bool = False


@dataclass(frozen=True)
class Candidate:
    target: str
    weight: float = 1.0


@dataclass(frozen=True)
class Choice:
    route: str
    strategy: str
    candidates: tuple[Candidate, ...]
    fallbacks: tuple[str, ...] = ()
    timeout_ms: int | None = None


@dataclass(frozen=True)
class Match:
    intents: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    privacy: tuple[str, ...] = ()
    priority: tuple[str, ...] = ()
    min_tokens: int | None = None
    max_tokens: int | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    # Globs compiled once per policy load: rule scanning is the hot loop of every decision.
    intent_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    tenant_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    metadata_re: tuple[tuple[str, re.Pattern[str]], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "intent_re", _globs_re(self.intents))
        object.__setattr__(self, "tenant_re", _globs_re(self.tenants))
        object.__setattr__(self, "metadata_re", tuple((key, re.compile(fnmatch.translate(glob))) for key, glob in self.metadata))

    def matches_key(self, intent: str, tenant_id: str, privacy: str, priority: str) -> bool:
        """The four fields a task's routing key holds (what ``RuleIndex`` memoises)."""
        if self.priority and priority not in self.priority:
            return False
        if self.privacy and privacy not in self.privacy:
            return False
        if self.intent_re is not None and not self.intent_re.match(intent):
            return False
        return self.tenant_re is None or self.tenant_re.match(tenant_id) is not None

    @property
    def has_residual(self) -> bool:
        """True when the rule also looks at token counts or metadata (checked per task, never memoised)."""
        return self.min_tokens is not None or self.max_tokens is not None or bool(self.metadata)

    def matches_residual(self, input_tokens: Callable[[], int], metadata: dict) -> bool:
        if self.min_tokens is not None and input_tokens() < self.min_tokens:
            return False
        if self.max_tokens is not None and input_tokens() > self.max_tokens:
            return False
        for key, pattern in self.metadata_re:
            value = metadata.get(key)
            if value is None or not pattern.match(str(value)):
                return False
        return True

    def matches(self, *, intent: str, tenant_id: str, privacy: str, priority: str, input_tokens: int, metadata: dict) -> bool:
        return self.matches_key(intent, tenant_id, privacy, priority) and self.matches_residual(lambda: input_tokens, metadata)


def _globs_re(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match
    choice: Choice


class RuleIndex:
    """The first-match scan of an ordered rule list, memoised per routing key.

    Whether a rule's intent, tenant, privacy and priority conditions hold depends only on
    those four task fields, so for each distinct key the index remembers the rules (in policy
    order) that pass them; a decision then checks only those rules' token and metadata
    conditions. A 200-rule scan becomes one dict lookup for every key seen before. The memo
    is bounded (cleared when full), so unbounded distinct keys cost the plain scan, never memory.
    """

    MAX_KEYS = 4096

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._memo: dict[tuple[str, str, str, str], tuple[Rule, ...]] = {}

    def candidates(self, intent: str, tenant_id: str, privacy: str, priority: str) -> tuple[Rule, ...]:
        key = (intent, tenant_id, privacy, priority)
        found = self._memo.get(key)
        if found is None:
            found = tuple(rule for rule in self.rules if rule.match.matches_key(intent, tenant_id, privacy, priority))
            if len(self._memo) >= self.MAX_KEYS:
                self._memo.clear()  # a racing reader at worst recomputes; the answer is the same
            self._memo[key] = found
        return found

    def first(
        self, intent: str, tenant_id: str, privacy: str, priority: str, input_tokens: Callable[[], int], metadata: dict
    ) -> Rule | None:
        for rule in self.candidates(intent, tenant_id, privacy, priority):
            if not rule.match.has_residual or rule.match.matches_residual(input_tokens, metadata):
                return rule
        return None


@dataclass(frozen=True)
class Policy:
    revision: int
    sha256: str
    targets: dict[str, Target]
    rules: tuple[Rule, ...]
    default: Choice
    seed: int = 0
    timeout_ms: int = 30000
    registry_modules: bool = True
    unhealthy_error_rate: float = 0.5
    min_samples: int = 5
    budget_default_usd: float | None = None
    budget_tenants: dict[str, float] = field(default_factory=dict)

    rule_index: RuleIndex = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule_index", RuleIndex(self.rules))

    def daily_budget(self, tenant_id: str) -> float | None:
        return self.budget_tenants.get(tenant_id, self.budget_default_usd)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "(root)"


def _schema_errors(document: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in sorted(_validator().iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - allowed):
                errors.setdefault(_path([*path, key]), []).append(f"unknown key {key!r}")
            continue
        if error.validator == "oneOf" and error.context:
            # Report the closest branch (the one that got furthest), not "is not valid under any".
            best = max(error.context, key=lambda e: len(e.absolute_path))
            path = list(best.absolute_path)
            message = best.message
        else:
            message = error.message
        errors.setdefault(_path(path), []).append(message)
    return errors


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _choice(raw: dict[str, Any]) -> Choice:
    candidates = tuple(
        Candidate(c) if isinstance(c, str) else Candidate(c["target"], float(c.get("weight", 1.0))) for c in raw["candidates"]
    )
    return Choice(
        route=raw.get("route", "hybrid"),
        strategy=raw.get("strategy", "priority"),
        candidates=candidates,
        fallbacks=tuple(raw.get("fallbacks", ())),
        timeout_ms=raw.get("timeout_ms"),
    )


def parse_policy(text: str, *, revision: int = 0, sha256: str = "") -> Policy:
    """Validate TEXT (YAML) and build the Policy; raises PolicyInvalid with dotted paths."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise PolicyInvalid({"(root)": [f"not valid YAML at {where}: {getattr(exc, 'problem', exc)}"]}) from exc
    errors = _schema_errors(document)
    if errors:
        raise PolicyInvalid(errors)
    assert isinstance(document, dict)
    targets: dict[str, Target] = {}
    for index, raw in enumerate(document.get("targets") or []):
        if raw["name"] in targets:
            errors.setdefault(f"targets.{index}.name", []).append(f"duplicate target name {raw['name']!r}")
            continue
        kind = raw["kind"]
        targets[raw["name"]] = Target(
            name=raw["name"],
            kind=kind,
            route=raw.get("route", "local" if kind == "module" else "api"),
            endpoint=raw.get("endpoint", "").rstrip("/"),
            base_url=raw.get("base_url", "").rstrip("/"),
            model=raw.get("model", ""),
            price_per_1k_tokens=float(raw.get("price_per_1k_tokens", 0.0)),
            api_key_env=raw.get("api_key_env", ""),
            api_key_vault=raw.get("api_key_vault", ""),
            timeout_ms=raw.get("timeout_ms"),
            intents=tuple(raw.get("intents", ())),
        )
    rules: list[Rule] = []
    seen_rules: set[str] = set()
    raw_rules = document.get("rules") or []
    for index, raw in enumerate(raw_rules):
        if raw["name"] in seen_rules:
            errors.setdefault(f"rules.{index}.name", []).append(f"duplicate rule name {raw['name']!r}")
        seen_rules.add(raw["name"])
        match = raw.get("match") or {}
        tokens = match.get("input_tokens") or {}
        rules.append(
            Rule(
                name=raw["name"],
                match=Match(
                    intents=_names(match.get("intent")),
                    tenants=_names(match.get("tenant")),
                    privacy=tuple(match.get("privacy", ())),
                    priority=tuple(match.get("priority", ())),
                    min_tokens=tokens.get("min"),
                    max_tokens=tokens.get("max"),
                    metadata=tuple(sorted((match.get("metadata") or {}).items())),
                ),
                choice=_choice(raw["choice"]),
            )
        )
    default = _choice(document["default"])
    # Cross-references: a typo in a candidate name must not silently drop a target.
    for prefix, choice in [*((f"rules.{i}.choice", r.choice) for i, r in enumerate(rules)), ("default", default)]:
        for ci, cand in enumerate(choice.candidates):
            if not cand.target.startswith("module:") and cand.target not in targets:
                errors.setdefault(f"{prefix}.candidates.{ci}", []).append(f"unknown target {cand.target!r}")
        for fi, name in enumerate(choice.fallbacks):
            if not name.startswith("module:") and name not in targets:
                errors.setdefault(f"{prefix}.fallbacks.{fi}", []).append(f"unknown target {name!r}")
    settings_block = document.get("settings") or {}
    budgets = document.get("budgets") or {}
    if errors:
        raise PolicyInvalid(errors)
    return Policy(
        revision=revision,
        sha256=sha256,
        targets=targets,
        rules=tuple(rules),
        default=default,
        seed=int(settings_block.get("seed", 0)),
        timeout_ms=int(settings_block.get("timeout_ms", 30000)),
        registry_modules=bool(settings_block.get("registry_modules", True)),
        unhealthy_error_rate=float(settings_block.get("unhealthy_error_rate", 0.5)),
        min_samples=int(settings_block.get("min_samples", 5)),
        budget_default_usd=budgets.get("default_daily_usd"),
        budget_tenants={k: float(v) for k, v in (budgets.get("tenants") or {}).items()},
    )


def policy_path() -> Path:
    return Path(settings.AION_ROUTER_POLICY_PATH)


def read_policy_file() -> tuple[str, str]:
    """The policy file's text and path; an unreadable file is a PolicyInvalid like a bad one."""
    path = policy_path()
    try:
        return path.read_text(), str(path)
    except OSError as exc:
        raise PolicyInvalid({"(file)": [f"cannot read {path}: {exc.strerror or exc}"]}) from exc
