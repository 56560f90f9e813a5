"""The learning loop's state changes: train on the stored samples, submit a revision, activate a submitted one.

``train_policy`` reads (samples and the active policy) and changes nothing. ``submit_revision`` stores a
policy document as a new *pending* revision (``POST /v1/router/policy/revisions``), with its training
report; ``activate_revision`` makes a pending revision the active one (``POST /v1/router/policy/reload``
with ``{"revision": N}``; without a body the reload re-reads the file as before). Both are atomic,
audited (before, after, request id) and published on aion.router.policies like reload and rollback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from aion import audit
from aion.errors import Conflict, InvalidInput, NotFound
from aion.outbox import actor_name, publish
from aion.topics import ROUTER_POLICIES
from router.choices import RevisionSource
from router.models import PolicyRevision, PolicyState
from router.policy import PolicyInvalid, parse_policy, read_policy_file
from router.policy_store import active_revision_number, file_policy, policy_changed
from router.samples import sample_rows
from router.training import GuardBounds, TrainingResult, run_training


@dataclass
class TrainingRun:
    result: TrainingResult
    since: datetime
    until: datetime


def _policy_invalid(exc: PolicyInvalid) -> InvalidInput:
    return InvalidInput("the router policy is invalid; the active policy is unchanged", code="policy-invalid", errors=exc.errors)


def _active_text() -> tuple[str, int]:
    """The active policy's text and revision number (0: nothing stored, the file as read)."""
    number = active_revision_number()
    if number:
        return PolicyRevision.objects.get(number=number).content, number
    try:
        file_policy()
    except PolicyInvalid as exc:
        raise _policy_invalid(exc) from exc
    return read_policy_file()[0], 0


def train_policy(*, since: datetime, until: datetime | None = None, bounds: GuardBounds | None = None) -> TrainingRun:
    """Train on every sample in [SINCE, UNTIL) against the active policy; stores nothing."""
    until = until or timezone.now()
    if since >= until:
        raise InvalidInput("since must be before until", errors={"since": ["must be before until"]})
    text, number = _active_text()
    result = run_training(text, sample_rows(since=since, until=until), bounds=bounds, base_revision=number)
    result.report["window"] = {"since": since.isoformat(), "until": until.isoformat()}
    return TrainingRun(result=result, since=since, until=until)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _summary(revision: PolicyRevision) -> dict[str, Any]:
    return {
        "revision": revision.number,
        "sha256": revision.sha256,
        "author": revision.author,
        "created_at": revision.created_at.isoformat(),
        "source": revision.source,
        "pending": revision.pending,
        "decision": (revision.training_report or {}).get("decision"),
    }


def submit_revision(content: str, *, report: dict[str, Any] | None, actor: Any, tenant_id: str) -> tuple[PolicyRevision, bool]:
    """Store CONTENT as a new pending revision (source ``training``); (revision, created).

    A retry is safe: content equal to the active revision or to a pending one returns that revision.
    """
    try:
        parse_policy(content)
    except PolicyInvalid as exc:
        raise _policy_invalid(exc) from exc
    sha = _sha(content)
    with transaction.atomic():
        PolicyState.objects.get_or_create(pk=1)
        state = PolicyState.objects.select_for_update().get(pk=1)  # numbers revisions with reload and rollback
        same = PolicyRevision.objects.filter(sha256=sha).filter(pending=True).first()
        active = PolicyRevision.objects.filter(number=state.active_number).first() if state.active_number else None
        if same is None and active is not None and active.sha256 == sha:
            same = active
        if same is not None:
            return same, False
        number, diff = PolicyRevision.next_number_and_diff(active, content)
        revision = PolicyRevision.objects.create(
            number=number,
            content=content,
            sha256=sha,
            author=actor_name(actor),
            author_tenant_id=tenant_id,
            diff=diff,
            source=RevisionSource.TRAINING,
            pending=True,
            training_report=report,
        )
        after = _summary(revision)
        audit.record("router.policy.submit", "router_policy", revision.number, actor=actor, tenant_id=tenant_id, before=None, after=after)
        publish(
            ROUTER_POLICIES,
            tenant_id or "platform",
            {**after, "checksum": sha, "active_revision": state.active_number or None},
            event_type="router.policy.submitted",
            tenant_id=tenant_id,
            actor=actor,
        )
    return revision, True


def activate_revision(number: int, *, actor: Any, tenant_id: str) -> tuple[PolicyRevision, bool]:
    """Make pending revision NUMBER the active one; (revision, changed). Already active: (revision, False)."""
    with transaction.atomic():
        PolicyState.objects.get_or_create(pk=1)
        state = PolicyState.objects.select_for_update().get(pk=1)
        revision = PolicyRevision.objects.select_for_update().filter(number=number).first()
        if revision is None:
            raise NotFound(f"policy revision {number} does not exist", code="revision-not-found", errors={"revision": ["unknown revision"]})
        if state.active_number == number:
            return revision, False
        if not revision.pending:
            raise Conflict(
                f"revision {number} is not a pending submission; re-activate an earlier revision with a rollback",
                code="revision-not-pending",
                errors={"revision": ["not pending"]},
            )
        try:
            parse_policy(revision.content)  # the schema may have tightened since it was submitted
        except PolicyInvalid as exc:
            raise _policy_invalid(exc) from exc
        current = PolicyRevision.objects.filter(number=state.active_number).first() if state.active_number else None
        revision.pending = False
        revision.save(update_fields=["pending"])
        state.active_number = revision.number
        state.updated_at = timezone.now()
        state.save(update_fields=["active_number", "updated_at"])
        policy_changed()
        transaction.on_commit(policy_changed)
        before = {"revision": current.number, "sha256": current.sha256} if current else None
        after = _summary(revision)
        audit.record(
            "router.policy.activate", "router_policy", revision.number, actor=actor, tenant_id=tenant_id, before=before, after=after
        )
        publish(
            ROUTER_POLICIES,
            tenant_id or "platform",
            {
                **after,
                "checksum": revision.sha256,
                "previous_revision": current.number if current else None,
                "diff": revision.diff[:20000],
                "activated_by": actor_name(actor),
            },
            event_type="router.policy.changed",
            tenant_id=tenant_id,
            actor=actor,
        )
    return revision, True
