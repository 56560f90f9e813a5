"""Every router state change, as plain functions the API, Console, Celery and commands all call.

Policy lifecycle: ``reload_policy``, ``rollback_policy`` and ``bootstrap_policy`` (the explicit first store;
reads never write, see ``router.policy_store``).
Decisions: ``route_task`` (dry run) and ``decide_for`` (shared with execution).
Tasks: ``submit_task``, ``cancel_task``, ``execute_task`` and ``requeue_stale_tasks``.
Each change is atomic, audited, and published through the outbox.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from aion import audit
from aion.auth.principal import system_principal
from aion.enqueue import enqueue
from aion.errors import Conflict, DomainError, NotFound, Rejected, Unavailable
from aion.outbox import actor_name, publish
from aion.topics import METRICS_RUNTIME, ROUTER_DECISIONS, ROUTER_POLICIES, TASKS_LIFECYCLE
from router import metrics
from router.choices import TERMINAL_STATUSES, Outcome, RevisionSource, TaskStatus
from router.clients import CallResult, call_target
from router.engine import Decision, TaskSpec, decide
from router.models import PolicyRevision, PolicyState, RuntimeSample, Task
from router.policy import PolicyInvalid, Target, parse_policy, read_policy_file
from router.policy_store import active_number_subquery, active_policy, active_revision_number, policy_changed
from router.stats import runtime_view

logger = logging.getLogger("router")


# --- Policy lifecycle -------------------------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _revision_dict(revision: PolicyRevision) -> dict[str, Any]:
    return {
        "revision": revision.number,
        "sha256": revision.sha256,
        "author": revision.author,
        "created_at": revision.created_at.isoformat(),
        "source": revision.source,
        "restored_from": revision.restored_from,
    }


def _activate(
    content: str,
    *,
    actor: Any,
    tenant_id: str,
    source: str,
    restored_from: int | None = None,
    path: str = "",
    only_if_none_active: bool = False,
) -> tuple[PolicyRevision, bool]:
    """Store CONTENT as a new active revision unless it equals the active one (or, with ONLY_IF_NONE_ACTIVE,
    unless any revision is active). Returns (revision, created)."""
    sha = _sha(content)
    with transaction.atomic():
        state, _ = PolicyState.objects.get_or_create(pk=1)
        state = PolicyState.objects.select_for_update().get(pk=1)  # serialises concurrent reloads
        current = PolicyRevision.objects.filter(number=state.active_number).first() if state.active_number else None
        if current is not None and (current.sha256 == sha or only_if_none_active):
            return current, False
        number, diff = PolicyRevision.next_number_and_diff(current, content)
        revision = PolicyRevision.objects.create(
            number=number,
            content=content,
            sha256=sha,
            author=actor_name(actor),
            author_tenant_id=tenant_id,
            diff=diff,
            source=source,
            restored_from=restored_from,
            path=path,
        )
        state.active_number = revision.number
        state.updated_at = timezone.now()
        state.save(update_fields=["active_number", "updated_at"])
        # This process sees its own change at once; on commit again, in case another thread
        # re-checked in between and cached the revision (or the unstored file) still committed then.
        policy_changed()
        transaction.on_commit(policy_changed)
        before = {"revision": current.number, "sha256": current.sha256} if current else None
        after = _revision_dict(revision)
        audit.record(
            f"router.policy.{source}", "router_policy", revision.number, actor=actor, tenant_id=tenant_id, before=before, after=after
        )
        publish(
            ROUTER_POLICIES,
            tenant_id or "platform",
            {**after, "checksum": sha, "previous_revision": current.number if current else None, "diff": diff[:20000]},
            event_type="router.policy.changed",
            tenant_id=tenant_id,
            actor=actor,
        )
    return revision, True


def reload_policy(*, actor: Any, tenant_id: str) -> tuple[PolicyRevision, bool]:
    """Re-read and validate the policy file; store and activate it if it changed.

    Raises PolicyInvalid (the active policy is untouched) when the file is invalid.
    """
    content, path = read_policy_file()
    parse_policy(content)
    return _activate(content, actor=actor, tenant_id=tenant_id, source=RevisionSource.RELOAD, path=path)


def rollback_policy(number: int, *, actor: Any, tenant_id: str) -> tuple[PolicyRevision, bool]:
    """Re-activate revision NUMBER's content as a new revision."""
    old = PolicyRevision.objects.filter(number=number).first()
    if old is None:
        raise NotFound(f"policy revision {number} does not exist", code="revision-not-found", errors={"revision": ["unknown revision"]})
    parse_policy(old.content)  # the schema may have tightened since; never activate an invalid policy
    return _activate(old.content, actor=actor, tenant_id=tenant_id, source=RevisionSource.ROLLBACK, restored_from=number, path=old.path)


def bootstrap_policy() -> tuple[PolicyRevision, bool]:
    """Store the policy file as revision 1 when no revision is active; once one is, a no-op (a reload or
    rollback is never overwritten). ``manage.py router_policy bootstrap`` runs it after migrate.

    Returns (revision, created); raises PolicyInvalid (nothing stored) when the file is invalid.
    """
    number = active_revision_number()
    if number:
        return PolicyRevision.objects.get(number=number), False
    content, path = read_policy_file()
    parse_policy(content)
    actor = system_principal("", "router-bootstrap")
    return _activate(content, actor=actor, tenant_id="", source=RevisionSource.BOOTSTRAP, path=path, only_if_none_active=True)


def policy_health() -> dict[str, Any]:
    """/readyz entry: the active revision, and whether the file on disk still validates."""
    try:
        number = PolicyState.objects.filter(pk=1).values_list("active_number", flat=True).first() or 0
    except Exception as exc:  # noqa: BLE001 - no table yet (before migrate) is "degraded", not a crash
        return {"status": "degraded", "error": type(exc).__name__}
    try:
        content, _ = read_policy_file()
        parse_policy(content)
        file_ok, error = True, ""
    except PolicyInvalid as exc:
        file_ok, error = False, str(exc)[:300]
    status = "ok" if file_ok else "degraded"
    return {"status": status, "active_revision": number, "file_valid": file_ok, **({"error": error} if error else {})}


# --- Decisions --------------------------------------------------------------------------------


def spec_from(data: dict[str, Any], tenant_id: str, key: str) -> TaskSpec:
    sla = data.get("sla") or {}
    return TaskSpec(
        intent=data["intent"],
        tenant_id=tenant_id,
        params=data.get("params") or {},
        preferred_engine=data.get("preferred_engine") or "auto",
        priority=data.get("priority") or "normal",
        privacy=sla.get("privacy") or "allow-api",
        budget_usd=sla.get("budget_usd"),
        p95_ms=sla.get("p95_ms"),
        metadata=data.get("metadata") or {},
        key=key,
    )


def decide_for(spec: TaskSpec, *, active_policy_number: int | None = None) -> Decision:
    """Decide with the active policy: checked within AION_ROUTER_POLICY_CHECK_SECONDS, or the
    ACTIVE_POLICY_NUMBER the caller has just read (0 = none stored: the policy file, as revision 0)."""
    try:
        policy = active_policy(active_number=active_policy_number)
    except PolicyInvalid as exc:
        raise Unavailable("no valid router policy is active", code="policy-unavailable", errors=exc.errors) from exc
    return decide(policy, spec, runtime_view(policy, spec.tenant_id))  # RoutingRefused: a domain error of its own


def _decision_fields(decision: Decision) -> dict[str, Any]:
    """The Task columns that record DECISION (written at submission and again when a run claims the task)."""
    return {
        "route": decision.route,
        "target": decision.target,
        "strategy": decision.strategy,
        "chosen_by": decision.chosen_by,
        "reason": decision.reason,
        "policy_revision": decision.policy_revision,
        "fallbacks": list(decision.fallbacks),
    }


def route_task(data: dict[str, Any], *, tenant_id: str) -> Decision:
    """The dry run: deterministic for the same policy, metrics and seed (default: the task's content)."""
    seed = data.get("seed")
    key = str(seed) if seed is not None else _sha(json.dumps({k: v for k, v in data.items() if k != "seed"}, sort_keys=True, default=str))
    return decide_for(spec_from(data, tenant_id, key))


# --- Tasks ------------------------------------------------------------------------------------


def task_state(task: Task) -> dict[str, Any]:
    """The public result shape: status, engine, usage and error."""
    return {
        "id": str(task.id),
        "status": task.status,
        "intent": task.intent,
        "engine": {"route": task.route, "target": task.target, "chosen_by": task.chosen_by, "reason": task.reason},
        "usage": {"latency_ms": task.latency_ms, "tokens": task.tokens, "cost_usd": float(task.cost_usd)},
        "error": {"code": task.error_code, "message": task.error_message} if task.error_code else None,
        "updated_at": task.updated_at.isoformat(),
    }


def _lifecycle(task: Task, actor: Any = None) -> None:
    publish(
        TASKS_LIFECYCLE,
        str(task.id),
        {"task_id": str(task.id), "state": task.status, **task_state(task)},
        event_type=f"task.{task.status.lower()}",
        tenant_id=task.tenant_id,
        actor=actor,
    )


def _request_fingerprint(data: dict[str, Any]) -> str:
    return _sha(json.dumps(data, sort_keys=True, default=str))


def submit_task(data: dict[str, Any], *, actor: Any, tenant_id: str, idempotency_key: str = "") -> tuple[Task, bool]:
    """Create a PENDING task and queue its execution. Returns (task, created).

    Routing is checked up front so budget exhaustion and privacy conflicts answer
    synchronously; the worker routes again with the policy active when it runs.
    The same Idempotency-Key returns the same task (a different body is a 409).
    """
    fingerprint = _request_fingerprint(data)
    if idempotency_key:
        existing = Task.objects.filter(tenant_id=tenant_id, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, fingerprint), False
    spec = spec_from(data, tenant_id, key="submit")
    decision = decide_for(spec)
    try:
        with transaction.atomic():
            task = Task.objects.create(
                tenant_id=tenant_id,
                intent=spec.intent,
                params=spec.params,
                preferred_engine=spec.preferred_engine,
                priority=spec.priority,
                sla=data.get("sla") or {},
                metadata=spec.metadata,
                **_decision_fields(decision),
                idempotency_key=idempotency_key,
                request_sha256=fingerprint,
                submitted_by=actor_name(actor),
            )
            audit.record("task.submit", "task", task.id, actor=actor, tenant_id=tenant_id, after=task_state(task))
            _lifecycle(task, actor)
            _enqueue_execution(task.id)  # once the row is committed
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race.
        existing = Task.objects.get(tenant_id=tenant_id, idempotency_key=idempotency_key)
        return _replay(existing, fingerprint), False
    return task, True


def _replay(task: Task, fingerprint: str) -> Task:
    if task.request_sha256 and task.request_sha256 != fingerprint:
        raise Rejected("this Idempotency-Key was used with a different request body", code="idempotency-key-reused", task_id=str(task.id))
    return task


def _enqueue_execution(task_id: Any, *, on_commit: bool = True) -> None:
    """Queue ``router.execute_task``; a broker outage is logged and the stale-task sweep re-queues it."""
    enqueue("router.execute_task", str(task_id), queue=settings.AION_ROUTER_TASK_QUEUE or None, on_commit=on_commit)


def cancel_task(task: Task, *, actor: Any) -> Task:
    """PENDING or RUNNING -> CANCELED (a running call's late result is discarded). 409 when already final."""
    now = timezone.now()
    with transaction.atomic():
        changed = Task.objects.filter(pk=task.pk, status__in=[TaskStatus.PENDING, TaskStatus.RUNNING]).update(
            status=TaskStatus.CANCELED,
            finished_at=now,
            updated_at=now,
            error_code="canceled",
            error_message=f"canceled by {actor_name(actor)}",
        )
        task.refresh_from_db()
        if not changed:
            raise Conflict(f"task is already {task.status}", code="task-final", status_value=task.status)
        audit.record("task.cancel", "task", task.id, actor=actor, tenant_id=task.tenant_id, after=task_state(task))
        _lifecycle(task, actor)
    return task


def _record_samples(task: Task, calls: list[tuple[Target, CallResult]]) -> None:
    """One RuntimeSample row per attempt (one multi-row INSERT) and its event on aion.metrics.runtime."""
    if not calls:
        return
    samples = RuntimeSample.objects.bulk_create(
        [
            RuntimeSample(
                tenant_id=task.tenant_id,
                task_id=task.id,
                target=target.name,
                route=target.route,
                outcome=result.outcome,
                latency_ms=result.latency_ms,
                tokens=result.tokens,
                cost_usd=Decimal(str(round(result.cost_usd, 6))) if result.outcome == Outcome.OK else Decimal(0),
            )
            for target, result in calls
        ]
    )
    for (target, result), sample in zip(calls, samples, strict=True):
        _publish_sample(task, target.name, target.route, result, sample)


def _publish_sample(task: Task, target_name: str, route: str, result: CallResult, sample: RuntimeSample) -> None:
    publish(
        METRICS_RUNTIME,
        target_name,
        {
            "sample_id": str(sample.sample_id),  # the runtime consumer finds this row by it: counted once
            "task_id": str(task.id),
            "target": target_name,
            "route": route,
            "outcome": result.outcome,
            "latency_ms": result.latency_ms,
            "latency_seconds": round(result.latency_ms / 1000.0, 6),
            "tokens": result.tokens,
            "cost_usd": float(sample.cost_usd),
            "error_code": result.error_code,
        },
        event_type="router.sample",
        tenant_id=task.tenant_id,
    )


def _lease_seconds(decision: Decision) -> float:
    per_call = [decision.timeout_s(i) for i in range(len(decision.targets))]
    return sum(per_call) + settings.AION_ROUTER_LEASE_MARGIN_SECONDS


def execute_task(task_id: str, *, now: Any = None) -> str:
    """Route, claim and run one task; returns its final status (or the status it already had).

    Claiming is a conditional UPDATE: PENDING, or RUNNING whose lease expired (the
    worker that held it died). A live lease means another worker has it: "busy".
    """
    # The task and the active policy revision in one round trip: execution routes with the revision
    # active now, so a reload is seen by every worker on its next task.
    task = Task.objects.filter(pk=task_id).annotate(active_policy_number=active_number_subquery()).order_by().first()
    if task is None:
        return "missing"
    if task.status in TERMINAL_STATUSES:
        return str(task.status)
    spec = spec_from(
        {
            "intent": task.intent,
            "params": task.params,
            "preferred_engine": task.preferred_engine,
            "priority": task.priority,
            "sla": task.sla,
            "metadata": task.metadata,
        },
        task.tenant_id,
        key=str(task.id),
    )
    now = now or timezone.now()
    try:
        decision = decide_for(spec, active_policy_number=int(getattr(task, "active_policy_number", None) or 0))
    except DomainError as exc:
        return _finish_without_call(task, exc, now)
    lease_until = now + timedelta(seconds=_lease_seconds(decision))
    claimable = Q(status=TaskStatus.PENDING) | Q(status=TaskStatus.RUNNING, lease_expires_at__lt=now)
    with transaction.atomic():
        claimed = Task.objects.filter(claimable, pk=task.pk).update(
            status=TaskStatus.RUNNING,
            runs=F("runs") + 1,
            lease_expires_at=lease_until,
            started_at=now,
            updated_at=now,
            **_decision_fields(decision),
        )
        if not claimed:
            task.refresh_from_db()
            return "busy" if task.status == TaskStatus.RUNNING else str(task.status)
        # The claim wrote these columns; no re-read (runs may lag a concurrent takeover, nothing reads it here).
        _apply(task, status=TaskStatus.RUNNING, runs=task.runs + 1, lease_expires_at=lease_until, started_at=now, updated_at=now)
        _apply(task, **_decision_fields(decision))
        metrics.DECISIONS.labels(decision.route, decision.strategy).inc()
        publish(
            ROUTER_DECISIONS,
            str(task.id),
            {"task_id": str(task.id), **decision.as_dict()},
            event_type="router.decision",
            tenant_id=task.tenant_id,
        )
        _lifecycle(task)
    return _run_attempts(task, decision)


def _apply(task: Task, **columns: Any) -> None:
    """Mirror columns a conditional UPDATE just wrote onto the in-memory task (instead of re-reading the row)."""
    for name, value in columns.items():
        setattr(task, name, value)


def _finish_without_call(task: Task, exc: DomainError, now: Any) -> str:
    with transaction.atomic():
        changed = Task.objects.filter(pk=task.pk, status=TaskStatus.PENDING).update(
            status=TaskStatus.ERROR, error_code=exc.code, error_message=exc.detail, finished_at=now, updated_at=now
        )
        task.refresh_from_db()
        if changed:
            audit.record("task.finish", "task", task.id, actor=None, tenant_id=task.tenant_id, after=task_state(task))
            _lifecycle(task)
    return str(task.status)


def _run_attempts(task: Task, decision: Decision) -> str:
    """Call the targets in order; the outcome, its samples, audit and events commit in one transaction.

    A single-attempt task (the usual case) thus costs one transaction after the call. Before a
    fallback attempt, the earlier attempts' samples are committed (their spend counts against the
    budget even if this worker dies during the next call) and a cancel is looked for.
    """
    attempts: list[dict[str, Any]] = []
    unrecorded: list[tuple[Target, CallResult]] = []
    final: CallResult | None = None
    final_target = decision.targets[0]
    started = timezone.now()
    for index, target in enumerate(decision.targets):
        if index:
            with transaction.atomic():
                _record_samples(task, unrecorded)
            unrecorded = []
            if Task.objects.filter(pk=task.pk, status=TaskStatus.CANCELED).exists():
                return TaskStatus.CANCELED
        # The claim has just committed RUNNING: a cancel landing from here on is caught by the final
        # conditional UPDATE (only a RUNNING task takes the outcome), so the first call needs no check.
        if spec_privacy(task) == "local-only" and target.route != "local":
            continue  # unreachable by construction (engine.decide); kept as a last line of defence
        timeout_s = decision.timeout_s(index)
        result = call_target(
            target, task_id=str(task.id), tenant_id=task.tenant_id, intent=task.intent, params=task.params, timeout_s=timeout_s
        )
        unrecorded.append((target, result))
        attempts.append(
            {
                "target": target.name,
                "route": target.route,
                "outcome": result.outcome,
                "latency_ms": result.latency_ms,
                "error_code": result.error_code,
            }
        )
        final, final_target = result, target
        if result.outcome == Outcome.OK:
            break
    assert final is not None
    if final.outcome == Outcome.OK:
        status = TaskStatus.OK
    elif all(a["outcome"] == Outcome.TIMEOUT for a in attempts):
        status = TaskStatus.TIMEOUT
    else:
        status = TaskStatus.ERROR
    finished = timezone.now()
    total_ms = round((finished - started).total_seconds() * 1000.0, 3)
    outcome = {
        "status": status,
        "route": final_target.route,
        "target": final_target.name,
        "reason": decision.reason if final_target.name == decision.target else f"{decision.reason}; fell back to {final_target.name}",
        "attempts": attempts,
        "output": final.output if status == TaskStatus.OK else None,
        "latency_ms": total_ms,
        "tokens": final.tokens,
        "cost_usd": Decimal(str(round(final.cost_usd, 6))) if status == TaskStatus.OK else Decimal(0),
        "error_code": "" if status == TaskStatus.OK else final.error_code,
        "error_message": "" if status == TaskStatus.OK else final.error_message,
        "finished_at": finished,
        "updated_at": finished,
        "lease_expires_at": None,
    }
    with transaction.atomic():
        _record_samples(task, unrecorded)  # an attempt happened even when a cancel wins below
        # Only a RUNNING task takes the outcome: a cancel that landed meanwhile wins.
        changed = Task.objects.filter(pk=task.pk, status=TaskStatus.RUNNING).update(**outcome)
        if not changed:
            task.refresh_from_db()
            return str(task.status)
        _apply(task, **outcome)
        metrics.TASK_LATENCY.labels(final_target.route, final_target.name).observe(total_ms / 1000.0)
        audit.record("task.finish", "task", task.id, actor=None, tenant_id=task.tenant_id, after=task_state(task))
        _lifecycle(task)
    return str(task.status)


def spec_privacy(task: Task) -> str:
    return str((task.sla or {}).get("privacy") or "allow-api")


def requeue_stale_tasks(*, now: Any = None) -> int:
    """Re-queue tasks a lost message or a dead worker left behind (claiming makes this safe to repeat)."""
    now = now or timezone.now()
    stale_pending = now - timedelta(seconds=settings.AION_ROUTER_STALE_PENDING_SECONDS)
    ids = list(
        Task.objects.filter(
            Q(status=TaskStatus.PENDING, updated_at__lt=stale_pending) | Q(status=TaskStatus.RUNNING, lease_expires_at__lt=now)
        ).values_list("id", flat=True)[:500]
    )
    for task_id in ids:
        _enqueue_execution(task_id, on_commit=False)  # the rows are committed already
    return len(ids)
