"""One agent cycle (fetch, verify, check, apply, report) and the two ways to run it: ``--once`` and ``--watch``."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kernel.agent import VERSION
from kernel.agent.appliers import APPLIED, FAILED, UNCHANGED, Applier, ApplyError, KeyResult, apply_key, desired_text
from kernel.agent.backoff import Backoff
from kernel.agent.client import ControlPlane, ControlPlaneError
from kernel.agent.guardrail import refusal
from kernel.agent.state import AgentState

# Exit statuses of --once: everything applied and reported; reported, but a key or a scope failed; not reported.
EXIT_OK, EXIT_FAILURES, EXIT_UNREPORTED = 0, 1, 2


def document_sha256(document: Mapping[str, Any]) -> str:
    """The control plane's hash of a document (kernel.services.document_sha256): sha256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class JsonLog:
    """One JSON object per line (stderr by default): what the agent did, for the node's log collector and for tests."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr

    def __call__(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str) + "\n")
        self.out.flush()


@dataclass
class Options:
    host: str
    pool: str
    scopes: list[str]
    interval: float = 30.0
    heartbeat: float = 60.0
    report_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    policy_file: Path | None = None
    # False (the default, Argo CD's selfHeal off): once a document is applied in full, a key changed by hand is
    # reported, not put back. True (--self-heal): the drift is reported first, then put back on the next cycle.
    self_heal: bool = False


@dataclass
class Cycle:
    """What one pass produced: the report body (without ``heartbeat``), whether it changed anything on the host,
    and whether the control plane could be read."""

    payload: dict[str, Any]
    applied: bool = False
    fetch_failed: bool = False
    failures: bool = False
    fingerprint: str = field(default="")


class Agent:
    def __init__(
        self,
        options: Options,
        control_plane: ControlPlane,
        appliers: Mapping[str, Applier],
        state: AgentState,
        *,
        log: Callable[..., None] | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.control_plane = control_plane
        self.appliers = appliers
        self.state = state
        self.log = log or JsonLog()
        self.backoff = backoff or Backoff(options.backoff_base, options.backoff_max)
        self.clock = clock
        self.stopping = threading.Event()
        self.last_report_error = ControlPlaneError("no report sent yet")
        self.next_heartbeat: float | None = None  # None: the first --watch cycle reports at once
        self.unreported = False

    # --- one cycle -------------------------------------------------------------------------------------

    def policy(self, errors: list[str]) -> dict[str, Any] | None:
        """The guardrail policy: the local file when one is given, else the control plane's (the last one fetched
        when it cannot be read now). None (every key refused) when there never was one."""
        if self.options.policy_file is not None:
            try:
                loaded = json.loads(self.options.policy_file.read_text())
            except (OSError, ValueError) as exc:
                errors.append(f"cannot read the policy file {self.options.policy_file}: {exc}")
                return None
            return loaded.get("policy", loaded) if isinstance(loaded, dict) else None
        try:
            policy = self.control_plane.policy()
        except ControlPlaneError as exc:
            cached = self.state.data.get("policy")
            errors.append(f"cannot fetch the guardrail policy ({exc})" + ("; using the last one fetched" if cached else ""))
            return cached if isinstance(cached, dict) else None
        self.state.data["policy"] = policy
        return policy

    def cycle(self) -> Cycle:
        errors: list[str] = []
        policy = self.policy(errors)
        scopes: dict[str, Any] = {}
        applied = fetch_failed = failures = False
        for scope in self.options.scopes:
            entry = self.state.scope(scope)
            fetch_failed = not self._desired(scope, entry, errors) or fetch_failed
            if "document" not in entry:
                continue  # nothing verified to apply (never fetched, or a bad sha256): the error says why
            scope_report, scope_applied = self._converge(scope, entry, policy, errors)
            scopes[scope] = scope_report
            applied = applied or scope_applied
            failures = failures or any(r["outcome"] == FAILED for r in scope_report["results"].values())
        failures = failures or bool(errors)
        payload = {"pool": self.options.pool, "agent_version": VERSION, "scopes": scopes, "errors": errors}
        fingerprint = json.dumps(
            {
                "scopes": {
                    s: {"revision": r["revision"], "sha256": r["sha256"], "observed": r["observed"], "failed": _failed(r["results"])}
                    for s, r in scopes.items()
                },
                "errors": errors,
            },
            sort_keys=True,
        )
        return Cycle(payload, applied=applied, fetch_failed=fetch_failed, failures=failures, fingerprint=fingerprint)

    def _desired(self, scope: str, entry: dict[str, Any], errors: list[str]) -> bool:
        """Fetches SCOPE's desired state into ENTRY (a 304 keeps the cached document). False when the control plane
        could not be read. A document whose sha256 does not verify is dropped, so nothing of the scope is applied."""
        try:
            desired = self.control_plane.desired(scope, entry.get("etag"), host=self.options.host, pool=self.options.pool)
        except ControlPlaneError as exc:
            self.log("fetch_failed", scope=scope, status=exc.status, error=str(exc))
            errors.append(f"{scope}: cannot fetch the desired state: {exc}")
            return False
        self.log("fetch", scope=scope, status=desired.status, etag=desired.etag)
        if desired.body is None:
            return True
        body = desired.body
        document = body.get("document")
        actual = document_sha256(document) if isinstance(document, dict) else None
        if actual is None or actual != body.get("sha256"):
            self.log("sha256_mismatch", scope=scope, revision=body.get("revision"), expected=body.get("sha256"), actual=actual)
            errors.append(
                f"{scope}: sha256 mismatch (the document hashes to {actual}, the control plane says {body.get('sha256')}); nothing applied"
            )
            for stale in ("document", "etag", "revision", "sha256", "in_place"):
                entry.pop(stale, None)  # not even the last good document: the next fetch must be a full one
            return True
        entry.update(etag=desired.etag, revision=body.get("revision"), sha256=actual, document=document)
        return True

    def _converge(self, scope: str, entry: dict[str, Any], policy: dict[str, Any] | None, errors: list[str]) -> tuple[dict[str, Any], bool]:
        """Applies ENTRY's document through the scope's applier; restores the baseline of keys that left it."""
        document: dict[str, Any] = entry.get("document") or {}
        report: dict[str, Any] = {"revision": entry.get("revision"), "sha256": entry.get("sha256"), "observed": {}, "results": {}}
        applier = self.appliers.get(scope)
        if applier is None:
            errors.append(f"{scope}: this agent has no applier for the scope")
            return report, False
        baseline: dict[str, str] = entry["baseline"]
        # A revision already in place is observed, not rewritten: a value changed by hand is reported as it is, so
        # the control plane sees the drift (Argo CD without self-heal). A new revision applies everything again.
        # With --self-heal, a drift is still reported first, and put back on the next cycle.
        in_place = entry.get("sha256") is not None and entry.get("in_place") == entry.get("sha256")
        heal = in_place and self.options.self_heal and entry.get("drift_reported") == entry.get("sha256")
        drifted = False
        applied = False
        for key in sorted(document):
            reason = refusal(policy, scope, key, document[key])
            result: KeyResult
            if reason:
                result, observed = KeyResult(FAILED, reason), _observe(applier, key)
            elif in_place and not heal:
                observed = _observe(applier, key)
                result = KeyResult(UNCHANGED) if observed is not None else KeyResult(FAILED, "cannot read the value back")
                drifted = drifted or (observed is not None and observed != desired_text(document[key]))
            else:
                result, before, observed = apply_key(applier, key, desired_text(document[key]))
                if result.outcome != "unchanged" and before is not None:
                    baseline.setdefault(key, before)  # the host's own value, for when the key leaves the document
            if observed is not None:
                report["observed"][key] = observed
            report["results"][key] = result.as_json()
            applied = applied or result.outcome == APPLIED
            self.log("key", scope=scope, key=key, outcome=result.outcome, error=result.error, observed=observed)
        for key in sorted(set(baseline) - set(document)):
            result, _, observed = apply_key(applier, key, baseline[key])
            self.log("restore", scope=scope, key=key, value=baseline[key], outcome=result.outcome, error=result.error)
            if result.outcome == FAILED:
                errors.append(f"{scope}: cannot restore {key} to {baseline[key]!r}: {result.error}")
            else:
                applied = applied or result.outcome == APPLIED
                del baseline[key]
        if all(r["outcome"] != FAILED for r in report["results"].values()) and not set(baseline) - set(document):
            entry["in_place"] = entry.get("sha256")  # every key applied or already so: from now on, observe only
        if drifted and self.options.self_heal:
            entry["drift_reported"] = entry.get("sha256")  # reported this cycle as it is; the next one puts it back
        elif heal:
            entry.pop("drift_reported", None)
        return report, applied

    # --- reporting -------------------------------------------------------------------------------------

    def send(self, cycle: Cycle, *, heartbeat: bool) -> bool:
        """One report; True when the control plane accepted it. A failure is logged with its status."""
        payload = {**cycle.payload, "heartbeat": heartbeat}
        self.log("report", host=self.options.host, heartbeat=heartbeat, payload=payload)
        try:
            status = self.control_plane.report(self.options.host, payload)
        except ControlPlaneError as exc:
            self.last_report_error = exc
            return False
        self.log("report_accepted", status=status)
        self.state.data["last_report"] = cycle.fingerprint
        return True

    def retry_delay(self, error: ControlPlaneError | None) -> float:
        """The next backoff delay; never shorter than the control plane's Retry-After (capped at ``backoff_max``); a
        failure that retrying will not cure (401, 403, 400...) waits ``backoff_max``."""
        if error is not None and not error.retryable:
            return self.options.backoff_max
        delay = self.backoff.next_delay()
        if error is not None and error.retry_after:
            delay = max(delay, min(error.retry_after, self.options.backoff_max))
        return delay

    def report_with_retries(self, cycle: Cycle, *, heartbeat: bool) -> bool:
        """Reports, retrying a retryable failure up to ``report_attempts`` times with backoff (``--once``)."""
        self.backoff.reset()
        for attempt in range(1, self.options.report_attempts + 1):
            if self.send(cycle, heartbeat=heartbeat):
                return True
            error = self.last_report_error
            last = attempt == self.options.report_attempts or not error.retryable
            delay = None if last else self.retry_delay(error)
            self.log("report_failed", attempt=attempt, status=error.status, error=str(error), retry_in=delay)
            if delay is None or self.stopping.wait(delay):
                return False
        return False

    # --- running ---------------------------------------------------------------------------------------

    def run_once(self) -> int:
        cycle = self.cycle()
        self.state.save()
        if not self.report_with_retries(cycle, heartbeat=False):
            self.state.save()
            return EXIT_UNREPORTED
        self.state.save()
        return EXIT_FAILURES if cycle.failures else EXIT_OK

    def tick(self) -> float:
        """One --watch iteration: a cycle, a report when something changed, when the last report was not accepted,
        or as a heartbeat every ``heartbeat`` seconds. The seconds to wait before the next: the interval, or a
        backoff delay after a failed fetch or report."""
        cycle = self.cycle()
        changed = cycle.applied or cycle.fingerprint != self.state.data.get("last_report")
        heartbeat_due = self.next_heartbeat is None or self.clock() >= self.next_heartbeat
        delay = self.options.interval
        failed = cycle.fetch_failed
        if changed or self.unreported or heartbeat_due:
            if self.send(cycle, heartbeat=not (changed or self.unreported)):
                self.unreported = False
                self.next_heartbeat = self.clock() + self.options.heartbeat
            else:
                self.unreported = failed = True
                error = self.last_report_error
                self.log("report_failed", status=error.status, error=str(error), retryable=error.retryable)
        if failed:
            delay = self.retry_delay(self.last_report_error if self.unreported else None)
            self.log("backoff", retry_in=delay)
        else:
            self.backoff.reset()
        self.state.save()
        return delay

    def watch(self) -> int:
        """Ticks until SIGTERM (or SIGINT)."""
        while not self.stopping.is_set():
            self.stopping.wait(self.tick())
        return EXIT_OK

    def stop(self, *_: Any) -> None:
        self.stopping.set()


def _failed(results: Mapping[str, Any]) -> dict[str, Any]:
    return {key: r["error"] for key, r in results.items() if r["outcome"] == FAILED}


def _observe(applier: Applier, key: str) -> str | None:
    try:
        return applier.observe(key)
    except ApplyError:
        return None
