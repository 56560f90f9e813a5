"""Hosts and rollout (issue 17 §2): what node agents report, the desired state per pool, and each host's state.

- **Desired state per pool.** A proposal's ``target`` is ``""`` (all hosts) or a pool. The document effective
  for pool P is the fold, in revision order, of each revision's delta from its parent (keys added, changed or
  removed), applied only when the revision's target is ``""`` or P. A revision's target is its proposal's (a
  rollback revision's is the rolled-back proposal's, so the rollback reverts exactly that pool). The effective
  revision number is the newest revision whose target matches; its sha256 is ``document_sha256`` of the folded
  document, which is what the agent verifies.
- **Reports.** ``record_report`` stores the host and its latest state per scope (the host row is locked, so
  concurrent reports of one host serialise; the first report of a new host is a get-or-create on its unique
  name). A kernel.agent credential reports only for the host it is bound to, or only for hosts of its pool.
- **State.** Per scope: ``failed`` (a key failed to apply), ``pending`` (not on the effective revision),
  ``drifted`` (on it, but an observed value differs from the desired one, compared as strings), else
  ``converged``; a host is the worst of its scopes (``failed`` also when it reports errors), or ``stale``
  when its last report is older than ``AION_KERNEL_HOST_STALE_SECONDS``. The state is computed on read (a new
  revision makes converged hosts pending at once); the state stored on the host is the last report's, kept to
  detect transitions: each one is audited (before, after, request id) and published on ``kernel.hosts`` as
  ``kernel.host.<state>``; the first detection of drift is ``kernel.host.drifted``.
- **Rollout** of revision n: the hosts it targets (its target's pool, or every host, serving the scope) and
  how many are converged on n or later. A rollback is complete when every targeted host converged on the
  rollback revision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion import audit
from aion.auth.principal import Principal
from aion.auth.services import HOST_NAME, POOL_NAME
from aion.errors import InvalidInput, NotAllowed
from aion.outbox import publish
from aion.roles import Role
from aion.topics import KERNEL_HOSTS
from kernel.choices import HostState
from kernel.documents import document_sha256, same_value
from kernel.models import ConfigRevision, Host, HostScope, Proposal
from kernel.presenters import empty_revision_state, revision_state

RESOURCE_TYPE = "kernel.host"
OUTCOMES = ("applied", "unchanged", "failed")
# Bounds of a report: an agent serves a handful of scopes of at most a few hundred keys.
MAX_SCOPES = 16
MAX_KEYS = 500
MAX_KEY_LENGTH = 200
MAX_VALUE_LENGTH = 1000
MAX_ERRORS = 50
MAX_ERROR_LENGTH = 2000
MAX_VERSION_LENGTH = 64
MAX_REVISION = 2**31 - 1
MAX_TARGET_LENGTH = 200
# The per-host list on a rollout (the counts always cover every host).
ROLLOUT_HOSTS = 200
# Worst first: a host's state is the worst of its scopes'.
SEVERITY = {HostState.CONVERGED: 0, HostState.PENDING: 1, HostState.DRIFTED: 2, HostState.FAILED: 3}


# --- desired state per pool ----------------------------------------------------------------------


@dataclass(frozen=True)
class Effective:
    """The document effective for one pool of one scope, and the newest revision that touched it (0 = none)."""

    scope: str
    pool: str
    number: int
    document: dict[str, Any]
    sha256: str


@dataclass
class Desired:
    """The tenant's revisions, read once per scope, folded per pool on demand (one per request or scrape)."""

    tenant_id: str
    _rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _effective: dict[tuple[str, str], Effective] = field(default_factory=dict)

    def rows(self, scope: str) -> list[dict[str, Any]]:
        if scope not in self._rows:
            queryset = ConfigRevision.objects.filter(tenant_id=self.tenant_id, scope=scope).order_by("number")
            self._rows[scope] = [dict(row) for row in queryset.values("id", "number", "document", "parent_id", "proposal__target")]
        return self._rows[scope]

    def target_of(self, scope: str, number: int) -> str | None:
        """The target of revision NUMBER ("" = all hosts), None when there is no such revision."""
        for row in self.rows(scope):
            if row["number"] == number:
                return str(row["proposal__target"] or "")
        return None

    def effective(self, scope: str, pool: str) -> Effective:
        key = (scope, pool)
        if key not in self._effective:
            number, document = fold(self.rows(scope), pool)
            self._effective[key] = Effective(scope, pool, number, document, document_sha256(document))
        return self._effective[key]


def fold(rows: Iterable[Mapping[str, Any]], pool: str) -> tuple[int, dict[str, Any]]:
    """(newest matching revision number, effective document) of POOL over ROWS in revision order."""
    documents: dict[Any, dict[str, Any]] = {}
    effective: dict[str, Any] = {}
    number = 0
    for row in rows:
        document = row["document"] if isinstance(row["document"], dict) else {}
        parent = documents.get(row["parent_id"], {})
        documents[row["id"]] = document
        if (row["proposal__target"] or "") not in ("", pool):
            continue
        for key, value in document.items():
            if key not in parent or not same_value(parent[key], value):
                effective[key] = value
        for key in parent:
            if key not in document:
                effective.pop(key, None)
        number = row["number"]
    return number, effective


def effective_config(tenant_id: str, scope: str, pool: str) -> dict[str, Any]:
    """``GET /v1/kernel/config/{scope}`` for one pool: the shape of ``revision_state``, plus ``target``."""
    effective = Desired(tenant_id).effective(scope, pool)
    revision = None
    if effective.number:
        revision = ConfigRevision.objects.filter(tenant_id=tenant_id, scope=scope, number=effective.number).select_related("parent").first()
    data = revision_state(revision) if revision is not None else empty_revision_state(scope)
    data.update(document=effective.document, sha256=effective.sha256, target=pool)
    return data


# Roles that read configuration as people and tools do (``?target=``), whatever else the credential holds.
CONFIG_READERS = frozenset({Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER, Role.KERNEL_BREAKGLASS, Role.AUDITOR, Role.MODULES_ADMIN})


def is_agent(principal: Principal) -> bool:
    """A node agent's credential: kernel.agent, and no role that reads configuration otherwise."""
    return Role.KERNEL_AGENT in principal.roles and not (principal.roles & CONFIG_READERS)


def config_pool(principal: Principal, *, target: str | None, pool: str | None) -> str | None:
    """The pool whose effective document a config read answers with; None = the scope's head (as before issue 17).

    A kernel.agent reads its credential's pool, else its bound host's recorded pool, else the ``pool`` it
    sends (only a host-bound key without a pool binding needs it). Any other reader may ask for ``target``."""
    if is_agent(principal):
        _require_binding(principal)
        if principal.pool:
            return principal.pool
        recorded = Host.objects.filter(tenant_id=principal.tenant_id, name=principal.host).values_list("pool", flat=True).first()
        if recorded:
            return str(recorded)
        return _checked_pool(pool or "", "pool") if pool else ""
    if target is None:
        return None
    if len(target) > MAX_TARGET_LENGTH:
        raise InvalidInput("The target is too long.", errors={"target": [f"At most {MAX_TARGET_LENGTH} characters."]})
    return target


# --- reports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeReport:
    revision: int
    sha256: str
    observed: dict[str, str]
    results: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Report:
    pool: str
    agent_version: str
    heartbeat: bool
    scopes: dict[str, ScopeReport]
    errors: list[str]


def _checked_pool(value: Any, name: str) -> str:
    if not isinstance(value, str) or not POOL_NAME.match(value):
        raise InvalidInput("Bad pool name.", errors={name: ["1-63 letters, digits, '.', '_' or '-'."]})
    return value


def _string(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and len(value) <= limit else None


def _string_map(value: Any, path: str, errors: dict[str, list[str]]) -> dict[str, str]:
    if not isinstance(value, dict):
        errors[path] = ["An object of key: string."]
        return {}
    if len(value) > MAX_KEYS:
        errors[path] = [f"At most {MAX_KEYS} keys."]
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        if not key or len(key) > MAX_KEY_LENGTH:
            errors[f"{path}.{str(key)[:MAX_KEY_LENGTH]}"] = [f"Keys are 1-{MAX_KEY_LENGTH} characters."]
        elif _string(item, MAX_VALUE_LENGTH) is None:
            errors[f"{path}.{key}"] = [f"A string of at most {MAX_VALUE_LENGTH} characters."]
        else:
            out[key] = item
    return out


def _results(value: Any, path: str, errors: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        errors[path] = ["An object of key: {outcome, error}."]
        return {}
    if len(value) > MAX_KEYS:
        errors[path] = [f"At most {MAX_KEYS} keys."]
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key, item in value.items():
        where = f"{path}.{str(key)[:MAX_KEY_LENGTH]}"
        if not key or len(key) > MAX_KEY_LENGTH:
            errors[where] = [f"Keys are 1-{MAX_KEY_LENGTH} characters."]
            continue
        if not isinstance(item, dict) or set(item) - {"outcome", "error"} or item.get("outcome") not in OUTCOMES:
            errors[where] = [f"An object {{outcome: {'|'.join(OUTCOMES)}, error: string or null}}."]
            continue
        error = item.get("error")
        if error is not None and _string(error, MAX_ERROR_LENGTH) is None:
            errors[f"{where}.error"] = [f"A string of at most {MAX_ERROR_LENGTH} characters, or null."]
            continue
        out[key] = {"outcome": item["outcome"], "error": error}
    return out


def _revision_number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REVISION:
        return None
    return value


def parse_report(data: Any) -> Report:
    """The validated report body, or ``InvalidInput`` naming every bad field (never a 500, whatever DATA is)."""
    if not isinstance(data, dict):
        raise InvalidInput("The report must be a JSON object.")
    errors: dict[str, list[str]] = {}
    allowed = {"pool", "agent_version", "heartbeat", "scopes", "errors"}
    for name in data:
        if name not in allowed:
            errors[str(name)[:MAX_KEY_LENGTH]] = ["Unknown field."]
    pool = data.get("pool")
    if not isinstance(pool, str) or not POOL_NAME.match(pool):
        errors["pool"] = ["Required: 1-63 letters, digits, '.', '_' or '-'."]
    version = data.get("agent_version", "")
    if _string(version, MAX_VERSION_LENGTH) is None:
        errors["agent_version"] = [f"A string of at most {MAX_VERSION_LENGTH} characters."]
    heartbeat = data.get("heartbeat", False)
    if not isinstance(heartbeat, bool):
        errors["heartbeat"] = ["A boolean."]
    host_errors = data.get("errors", [])
    if not isinstance(host_errors, list) or len(host_errors) > MAX_ERRORS or any(_string(e, MAX_ERROR_LENGTH) is None for e in host_errors):
        errors["errors"] = [f"A list of at most {MAX_ERRORS} strings of at most {MAX_ERROR_LENGTH} characters."]
    scopes: dict[str, ScopeReport] = {}
    raw_scopes = data.get("scopes", {})
    if not isinstance(raw_scopes, dict) or len(raw_scopes) > MAX_SCOPES:
        errors["scopes"] = [f"An object of at most {MAX_SCOPES} scopes."]
        raw_scopes = {}
    for scope, item in raw_scopes.items():
        path = f"scopes.{str(scope)[:64]}"
        if not scope or len(scope) > 64:
            errors[path] = ["Scope names are 1-64 characters."]
            continue
        if not isinstance(item, dict):
            errors[path] = ["An object {revision, sha256, observed, results}."]
            continue
        for name in item:
            if name not in ("revision", "sha256", "observed", "results"):
                errors[f"{path}.{str(name)[:MAX_KEY_LENGTH]}"] = ["Unknown field."]
        number = _revision_number(item.get("revision"))
        if number is None:
            errors[f"{path}.revision"] = [f"Required: an integer in 0..{MAX_REVISION}."]
        sha256 = item.get("sha256")
        if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            errors[f"{path}.sha256"] = ["Required: 64 lowercase hex digits."]
        observed = _string_map(item.get("observed", {}), f"{path}.observed", errors)
        results = _results(item.get("results", {}), f"{path}.results", errors)
        if number is not None and isinstance(sha256, str):
            scopes[scope] = ScopeReport(number, sha256, observed, results)
    if errors:
        raise InvalidInput("The report is invalid.", errors=errors)
    return Report(pool=pool, agent_version=version, heartbeat=heartbeat, scopes=scopes, errors=list(host_errors))  # type: ignore[arg-type]


def _require_binding(actor: Principal) -> None:
    if not (actor.host or actor.pool):
        raise NotAllowed("This kernel.agent credential is bound to no host or pool; issue one with --host or --pool.", code="unbound-agent")


def _check_reporter(actor: Principal, host_name: str, report: Report) -> None:
    """A kernel.agent reports only for its bound host, or for hosts of its bound pool."""
    if Role.KERNEL_AGENT not in actor.roles:
        raise NotAllowed("Only a kernel.agent credential reports host state.", required_role=Role.KERNEL_AGENT.value)
    _require_binding(actor)
    if actor.host and actor.host != host_name:
        raise NotAllowed(f"This credential reports for host {actor.host!r} only.", code="host-binding")
    if actor.pool and report.pool != actor.pool:
        raise NotAllowed(f"This credential reports for hosts of pool {actor.pool!r} only.", code="pool-binding")


def record_report(actor: Principal, host_name: str, report: Report, *, now: datetime | None = None) -> dict[str, Any]:
    """Store REPORT as HOST_NAME's latest state (one transaction); a state change is audited and published."""
    now = now or timezone.now()
    if not HOST_NAME.match(host_name or ""):
        raise InvalidInput("Bad host name.", errors={"host": ["1-253 letters, digits, '.', '_' or '-'."]})
    _check_reporter(actor, host_name, report)
    tenant_id = actor.tenant_id
    with transaction.atomic():
        # get_or_create: two first reports of one host race on the unique name; the loser reads the winner's row.
        Host.objects.get_or_create(
            tenant_id=tenant_id,
            name=host_name,
            defaults={"pool": report.pool, "first_seen_at": now, "last_report_at": now, "state_since": now},
        )
        host = Host.objects.select_for_update().get(tenant_id=tenant_id, name=host_name)
        if actor.pool and host.pool != actor.pool:
            raise NotAllowed(f"Host {host_name!r} is in pool {host.pool!r}, outside this credential's pool.", code="pool-binding")
        previous = None if host.reports == 0 else host.state
        desired = Desired(tenant_id)
        before = host_state(host, list(host.scopes.all()), desired, now=now, stored=True) if previous else None
        for scope, item in report.scopes.items():
            HostScope.objects.update_or_create(
                host=host,
                scope=scope,
                defaults={
                    "revision": item.revision,
                    "sha256": item.sha256,
                    "observed": item.observed,
                    "results": item.results,
                    "reported_at": now,
                },
            )
        host.pool = report.pool
        host.agent_version = report.agent_version
        host.errors = report.errors
        host.reports += 1
        host.last_report_at = now
        after = host_state(host, list(host.scopes.all()), desired, now=now)
        host.state = after["state"]
        if previous != host.state:
            host.state_since = now
            after["state_since"] = now.isoformat()
        host.save()
        if previous != host.state:
            _record_transition(actor, host, previous, before, after)
    return after


def _record_transition(actor: Principal, host: Host, previous: str | None, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    action = f"{RESOURCE_TYPE}.{host.state}"
    metadata = {"previous_state": previous, "state": host.state, "pool": host.pool}
    audit.record(action, RESOURCE_TYPE, host.name, actor=actor, tenant_id=host.tenant_id, before=before, after=after, metadata=metadata)
    payload = {"host": after, "previous_state": previous, "state": host.state}
    publish(KERNEL_HOSTS, host.name, payload, event_type=action, tenant_id=host.tenant_id, actor=actor)


# --- state ---------------------------------------------------------------------------------------


def observed_form(value: Any) -> str | None:
    """A desired value as an agent observes it: booleans as "1"/"0", numbers in decimal, lists space-separated,
    strings as they are."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    if isinstance(value, list):
        # A vector sysctl (net.ipv4.tcp_rmem = [4096, 87380, 6291456]): the agent writes and reads "4096 87380 6291456".
        return " ".join(str(observed_form(item)) for item in value)
    return str(value)


def _same_observed(observed: str | None, desired: Any) -> bool:
    wanted = observed_form(desired)
    if observed is None or wanted is None:
        return observed is wanted
    return " ".join(observed.split()) == " ".join(wanted.split())  # /proc/sys separates fields with tabs


def scope_state(row: HostScope, effective: Effective) -> dict[str, Any]:
    """One scope of one host against its effective desired state."""
    failed = sorted(key for key, result in (row.results or {}).items() if result.get("outcome") == "failed")
    drifted: list[dict[str, Any]] = []
    if failed:
        state = HostState.FAILED
    elif row.revision != effective.number or row.sha256 != effective.sha256:
        state = HostState.PENDING
    else:
        observed = row.observed or {}
        drifted = [
            {"key": key, "desired": value, "observed": observed.get(key)}
            for key, value in sorted(effective.document.items())
            if not _same_observed(observed.get(key), value)
        ]
        state = HostState.DRIFTED if drifted else HostState.CONVERGED
    return {
        "state": state.value,
        "revision": row.revision,
        "desired_revision": effective.number,
        "sha256": row.sha256,
        "drifted_keys": drifted,
        "failed_keys": [{"key": key, "error": row.results[key].get("error")} for key in failed],
        "observed": row.observed,
        "reported_at": row.reported_at.isoformat(),
    }


def is_stale(host: Host, now: datetime) -> bool:
    return now - host.last_report_at > timedelta(seconds=settings.AION_KERNEL_HOST_STALE_SECONDS)


def host_state(host: Host, scopes: Iterable[HostScope], desired: Desired, *, now: datetime, stored: bool = False) -> dict[str, Any]:
    """A host as served: pool, last report, state and its scopes' states (STORED: the state as last recorded)."""
    states = {row.scope: scope_state(row, desired.effective(row.scope, host.pool)) for row in sorted(scopes, key=lambda r: r.scope)}
    worst = max((HostState(s["state"]) for s in states.values()), key=SEVERITY.__getitem__, default=HostState.CONVERGED)
    if host.errors:
        worst = HostState.FAILED
    state = host.state if stored else (HostState.STALE if is_stale(host, now) else worst)
    return {
        "name": host.name,
        "pool": host.pool,
        "state": str(state),
        "agent_version": host.agent_version,
        "last_report_at": host.last_report_at.isoformat(),
        "first_seen_at": host.first_seen_at.isoformat(),
        "state_since": host.state_since.isoformat(),
        "errors": list(host.errors or []),
        "scopes": states,
    }


def host_rows(tenant_id: str) -> Any:
    """The tenant's hosts, their scope rows prefetched (filter and page it freely)."""
    return Host.objects.filter(tenant_id=tenant_id).prefetch_related("scopes").order_by("name")


def host_states(
    hosts: Iterable[Host], *, tenant_id: str, now: datetime | None = None, desired: Desired | None = None
) -> list[dict[str, Any]]:
    now = now or timezone.now()
    desired = desired or Desired(tenant_id)
    return [host_state(host, host.scopes.all(), desired, now=now) for host in hosts]


def live_state(host: Host, desired: Desired, now: datetime) -> str:
    return str(host_state(host, host.scopes.all(), desired, now=now)["state"])


# --- rollout -------------------------------------------------------------------------------------


def revision_rollout(
    tenant_id: str, scope: str, number: int, *, desired: Desired | None = None, now: datetime | None = None, host_limit: int = ROLLOUT_HOSTS
) -> dict[str, Any] | None:
    """Revision NUMBER's rollout: the hosts it targets (serving SCOPE, in its target's pool or all), and how many
    are converged on it or a later revision. None when there is no such revision."""
    desired = desired or Desired(tenant_id)
    now = now or timezone.now()
    target = desired.target_of(scope, number)
    if target is None:
        return None
    hosts = Host.objects.filter(tenant_id=tenant_id, scopes__scope=scope).order_by("name").distinct()
    if target:
        hosts = hosts.filter(pool=target)
    counts = {state.value: 0 for state in HostState}
    listed: list[dict[str, Any]] = []
    converged = 0
    targeted = 0
    for host in hosts.prefetch_related("scopes"):
        row = next(r for r in host.scopes.all() if r.scope == scope)
        state = scope_state(row, desired.effective(scope, host.pool))
        name = HostState.STALE.value if is_stale(host, now) else state["state"]
        on_it = name == HostState.CONVERGED and row.revision >= number
        targeted += 1
        converged += on_it
        counts[name] += 1
        if len(listed) < host_limit:
            listed.append(
                {
                    "name": host.name,
                    "pool": host.pool,
                    "state": name,
                    "converged": on_it,
                    "revision": row.revision,
                    "desired_revision": state["desired_revision"],
                    "drifted_keys": state["drifted_keys"],
                    "failed_keys": state["failed_keys"],
                    "last_report_at": host.last_report_at.isoformat(),
                }
            )
    return {
        "revision": number,
        "target": target,
        "targeted": targeted,
        "converged": converged,
        "ratio": round(converged / targeted, 4) if targeted else None,
        "complete": targeted > 0 and converged == targeted,
        "states": counts,
        "hosts": listed,
        "hosts_truncated": targeted > len(listed),
    }


def proposal_rollout(proposal: Proposal, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The rollout of PROPOSAL's latest revision (the rollback's once rolled back), with ``rollback_complete``."""
    revision = proposal.rollback_revision or proposal.applied_revision
    if revision is None:
        return None
    rollout = revision_rollout(proposal.tenant_id, proposal.scope, revision.number, now=now)
    if rollout is None:
        return None
    rollout["kind"] = revision.kind
    rollout["rollback_complete"] = rollout["complete"] if proposal.rollback_revision_id else None
    return rollout
