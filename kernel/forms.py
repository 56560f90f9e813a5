"""Console forms of the kernel app.

The rules stay in ``kernel.services`` (the API, the Console and the commands share them): a form turns what a
person typed into the service's arguments, calls the service, and maps its errors back onto what was typed —
``changes.2.to`` becomes "Line 3 (vm.swappiness): …", counted 1-based like the lines in the text box.
Bounds shown next to the fields come from the guardrail policy the service enforces.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

from django import forms

from aion.auth.principal import Principal
from aion.errors import DomainError, InvalidInput
from kernel import services
from kernel.errors import ConfigDrift
from kernel.models import ConfigRevision, Proposal
from kernel.policy import KeyRule, Policy

# Service error paths for one change: "changes.0", "changes.0.key", "changes.0.to".
_CHANGE_PATH = re.compile(r"^changes\.(?P<index>\d+)(?:\.(?P<part>\w+))?$")
_FORM_FIELDS = ("scope", "target", "justification", "risk_score", "ttl_seconds", "changes")


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_value(text: str) -> Any:
    """``1024`` -> 1024, ``true`` -> True, ``null``/empty -> None (remove the key), anything else a string."""
    text = text.strip()
    if text == "":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text


def format_value(value: Any) -> str:
    """How to type VALUE in a change line: plain words stay plain (``load``), the rest is JSON (``1024``, ``true``)."""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    return json.dumps(value)


def describe_rule(rule: KeyRule) -> str:
    """What a key accepts, in words: "integer from 128 to 65535", "load or block"."""
    if rule.type in ("integer", "number"):
        noun = "integer" if rule.type == "integer" else "number"
        if rule.min is not None and rule.max is not None:
            return f"{noun} from {_number(rule.min)} to {_number(rule.max)}"
        if rule.min is not None:
            return f"{noun} ≥ {_number(rule.min)}"
        if rule.max is not None:
            return f"{noun} ≤ {_number(rule.max)}"
        return noun
    if rule.type == "boolean":
        return "true or false"
    if rule.type == "enum":
        choices = [str(c) for c in rule.choices]
        return " or ".join(choices) if len(choices) <= 2 else "one of " + ", ".join(choices)
    parts = ["text"]
    if rule.max_length is not None:
        parts.append(f"at most {rule.max_length} characters")
    if rule.pattern:
        parts.append(f"matching {rule.pattern}")
    return ", ".join(parts)


def example_value(rule: KeyRule, current: Any) -> Any:
    """A value the policy accepts and that differs from CURRENT (so the example would change something), or None."""
    candidates: list[Any] = []
    if rule.type in ("integer", "number"):
        candidates = [b for b in (rule.min, rule.max) if b is not None] or [1, 2]
        candidates = [int(c) if rule.type == "integer" else c for c in candidates]
    elif rule.type == "boolean":
        candidates = [True, False]
    elif rule.type == "enum":
        candidates = list(rule.choices)
    for candidate in candidates:
        if rule.check(candidate) is None and not services.same_value(candidate, current):
            return candidate
    return None


@dataclass(frozen=True)
class KeyHelp:
    key: str
    accepts: str
    current: Any
    example: Any


class ProposalForm(forms.Form):
    """New proposal: a scope, ``key = value`` lines, the target, a justification, the risk and a TTL."""

    scope = forms.ChoiceField(label="Scope")
    base_revision = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
    changes = forms.CharField(
        label="Changes, one per line: key = value",
        help_text='JSON values (1024, true, "deny"); an empty value removes the key; lines starting with # are ignored.',
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
    )
    target = forms.CharField(label="Target (optional, e.g. a node pool)", required=False)
    justification = forms.CharField(label="Justification", widget=forms.Textarea(attrs={"rows": 3}))
    risk_score = forms.FloatField(label="Risk score")
    ttl_seconds = forms.IntegerField(label="TTL in seconds", required=False)

    def __init__(self, *args: Any, policy: Policy, tenant_id: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.tenant_id = tenant_id
        self.change_lines: list[int] = []  # the 1-based line of each parsed change, by index
        self.parsed_changes: list[dict[str, Any]] = []
        self.drifted = False
        cast(forms.ChoiceField, self.fields["scope"]).choices = [(name, name) for name in sorted(policy.scopes)]
        risk = self.fields["risk_score"]
        risk.label = f"Risk score (0 to {_number(policy.max_risk_score)})"
        risk.help_text = "; ".join(
            f"from {_number(low)}: {n} approval{'s' if n != 1 else ''}" for low, n in policy.approval_bands if low <= policy.max_risk_score
        )
        risk.widget.attrs.update({"min": "0", "max": _number(policy.max_risk_score), "step": "0.01"})
        ttl = self.fields["ttl_seconds"]
        ttl.label = f"TTL in seconds (default {policy.default_ttl_seconds}, at most {policy.max_ttl_seconds})"
        ttl.widget.attrs.update({"min": "1", "max": str(policy.max_ttl_seconds)})
        document = self.base_document()
        keys = self.key_help(document)
        examples = [f"{k.key} = {format_value(k.example)}" for k in keys if k.example is not None][:2]
        if examples:
            self.fields["changes"].widget.attrs["placeholder"] = "\n".join(examples)
        self.fields["changes"].widget.attrs["aria-describedby"] = "id_changes_helptext allowed-keys"

    # --- what the form shows -----------------------------------------------------------------

    def _raw(self, name: str) -> Any:
        # Not BoundField.value(): its initial is cached, and the view re-bases a bound form after drift.
        if self.is_bound:
            return self.fields[name].widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
        return self.get_initial_for_field(self.fields[name], name)

    def scope_name(self) -> str:
        value = self._raw("scope")
        return value if value in self.policy.scopes else sorted(self.policy.scopes)[0]

    def base_number(self) -> int:
        value = str(self._raw("base_revision") or "0")
        return int(value) if value.isdigit() else 0

    def base_document(self) -> dict[str, Any]:
        """The document of the revision the form was opened at: each change's ``from`` comes from it."""
        number = self.base_number()
        if not number:
            return {}
        revision = ConfigRevision.objects.filter(tenant_id=self.tenant_id, scope=self.scope_name(), number=number).first()
        return dict(revision.document) if revision else {}

    def key_help(self, document: dict[str, Any] | None = None) -> list[KeyHelp]:
        """The scope's allowlisted keys with what each accepts (from the policy) and its current value."""
        document = self.base_document() if document is None else document
        rules = self.policy.scopes[self.scope_name()].keys
        return [
            KeyHelp(key=key, accepts=describe_rule(rule), current=document.get(key), example=example_value(rule, document.get(key)))
            for key, rule in sorted(rules.items())
        ]

    # --- validation: parse here, rules in the service -----------------------------------------

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        text = cleaned.get("changes")
        if text is None:
            return cleaned
        document = self.base_document()
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.strip().startswith("#"):
                continue
            if "=" not in line:
                self.add_error("changes", f"Line {number}: write key = value.")
                continue
            key, _, value = line.partition("=")
            self.change_lines.append(number)
            self.parsed_changes.append({"key": key.strip(), "from": document.get(key.strip()), "to": parse_value(value)})
        return cleaned

    def submit(self, principal: Principal) -> Proposal | None:
        """Validate (``is_valid``), then submit through the service; None with the errors on the form when refused."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        try:
            return services.submit_proposal(
                principal,
                scope=data["scope"],
                changes=self.parsed_changes,
                justification=data["justification"],
                risk_score=data["risk_score"],
                ttl_seconds=data["ttl_seconds"],
                target=data["target"].strip(),
            )
        except DomainError as problem:
            self._add_problem(problem)
            return None

    def _add_problem(self, problem: DomainError) -> None:
        if isinstance(problem, ConfigDrift):
            self.drifted = True
            keys = ", ".join(d["key"] for d in problem.extra.get("drifted_keys", []))
            self.add_error(
                "changes", f"The configuration changed since this form was opened ({keys}); review the current values and resubmit."
            )
            return
        if not problem.errors:
            self.add_error(None, str(problem.detail))
            return
        for path, messages in problem.errors.items():
            for message in messages:
                field, text = self._locate(path, message)
                self.add_error(field, text)

    def _locate(self, path: str, message: str) -> tuple[str | None, str]:
        """A service error path as a form field and a message naming the 1-based line it came from."""
        match = _CHANGE_PATH.match(path)
        if match:
            index = int(match.group("index"))
            if index < len(self.change_lines):
                key = self.parsed_changes[index]["key"]
                where = f"Line {self.change_lines[index]}" + (f" ({key})" if match.group("part") != "key" else "")
                return "changes", f"{where}: {message}"
            return "changes", message
        field = path if path in _FORM_FIELDS else None
        return field, message if field else f"{path}: {message}"


ACTIONS = ("approve", "reject", "apply", "rollback", "breakglass")


class ProposalActionForm(forms.Form):
    """One action's confirmation (approve, reject, apply, rollback, break-glass): the ETag the page showed and the
    comment/reason/justification. Whether the text is required, and how long, is the service's rule."""

    etag = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    text = forms.CharField(required=False, strip=True, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.action = action

    def perform(self, proposal: Proposal, principal: Principal) -> Proposal:
        """Calls the action's service; its refusal (a domain error) propagates to the view."""
        if not self.is_valid():
            raise InvalidInput("The action's form is invalid.", errors={k: [str(e) for e in v] for k, v in self.errors.items()})
        etag = self.cleaned_data["etag"] or None
        text = self.cleaned_data["text"]
        if self.action == "approve":
            return services.approve_proposal(proposal, principal, comment=text, if_match=etag)
        if self.action == "reject":
            return services.reject_proposal(proposal, principal, reason=text, if_match=etag)
        if self.action == "apply":
            return services.apply_proposal(proposal, principal, if_match=etag)
        if self.action == "rollback":
            return services.rollback_proposal(proposal, principal, reason=text, if_match=etag)
        return services.breakglass_approve(proposal, principal, justification=text, if_match=etag)


class RevisionCompareForm(forms.Form):
    """The scope page's "compare revisions" pickers: two revision numbers (0 is the empty document)."""

    a = forms.TypedChoiceField(label="From", coerce=int, required=False)
    b = forms.TypedChoiceField(label="To", coerce=int, required=False)

    def __init__(self, *args: Any, numbers: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(n, str(n)) for n in numbers]
        for name in ("a", "b"):
            field = cast(forms.TypedChoiceField, self.fields[name])
            field.choices = choices
            field.empty_value = None

    def pair(self, head: int) -> tuple[int, int]:
        """(a, b): the chosen numbers, or head-1 and head; an unknown number falls back to its default (never a 500)."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        b = data.get("b")
        b = head if b is None else b
        a = data.get("a")
        return (max(b - 1, 0) if a is None else a), b


class LiveQueryForm(forms.Form):
    """The polling fallback's query (``changes.json?proposal=``): one proposal, or the whole list when absent."""

    proposal = forms.UUIDField(required=False)
