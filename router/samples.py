"""Runtime samples as training rows: each ``RuntimeSample`` with the rule that routed its task.

Read-only. ``sample_rows`` feeds ``router.training`` (platform-wide: the policy is platform-wide, and
only per-target aggregates leave it); ``tenant_samples`` is the tenant-scoped export behind
``GET /v1/router/samples``. A sample's ``rule`` is its task's ``chosen_by`` (``rule:<name>`` or
``default``), so each rule is trained on the traffic it routed; samples without a task (sent by module
hosts on aion.metrics.runtime) only count in the per-target figures.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from aion.api.filters import BoundedIsoDateTimeField
from aion.errors import InvalidInput
from router.models import RuntimeSample, Task
from router.training import SampleRow

_DURATION = re.compile(r"^(\d{1,5})([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str, *, now: datetime | None = None, field: str = "since") -> datetime:
    """A window start: a duration back from now (``7d``, ``12h``, ``30m``, ``2w``) or an ISO 8601 time."""
    now = now or timezone.now()
    text = (value or "").strip()
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    try:
        moment = BoundedIsoDateTimeField().clean(text)  # offsets and ranges a database accepts, in UTC
    except ValidationError:
        moment = None
    if moment is None:
        raise InvalidInput(f"{field}={value!r} is neither a duration (7d, 12h, 30m, 2w) nor an ISO 8601 time", errors={field: ["invalid"]})
    return moment if moment.tzinfo else timezone.make_aware(moment, UTC)


def with_rule(queryset: QuerySet[RuntimeSample]) -> QuerySet[RuntimeSample]:
    """Samples annotated with their task's rule (``chosen_by``) and intent, oldest first (a stable page order)."""
    task = Task.objects.filter(pk=OuterRef("task_id"))
    return queryset.annotate(rule=Subquery(task.values("chosen_by")[:1]), intent=Subquery(task.values("intent")[:1])).order_by(
        "created_at", "id"
    )


def window(queryset: QuerySet[RuntimeSample], since: datetime | None, until: datetime | None) -> QuerySet[RuntimeSample]:
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset


def tenant_samples(tenant_id: str, *, since: datetime | None = None, until: datetime | None = None) -> QuerySet[RuntimeSample]:
    """The export: one tenant's samples in [SINCE, UNTIL), oldest first, with rule and intent."""
    return with_rule(window(RuntimeSample.objects.filter(tenant_id=tenant_id), since, until))


def sample_dict(sample: Any) -> dict[str, Any]:
    return {
        "sample_id": str(sample.sample_id) if sample.sample_id else None,
        "created_at": sample.created_at.isoformat(),
        "task_id": str(sample.task_id) if sample.task_id else None,
        "intent": getattr(sample, "intent", None),
        "rule": getattr(sample, "rule", None) or None,
        "target": sample.target,
        "route": sample.route,
        "outcome": sample.outcome,
        "latency_ms": sample.latency_ms,
        "tokens": sample.tokens,
        "cost_usd": float(sample.cost_usd),
    }


def sample_rows(*, since: datetime, until: datetime, limit: int = 200_000) -> list[SampleRow]:
    """Every tenant's samples in [SINCE, UNTIL) as training rows, oldest first (at most LIMIT, the newest kept)."""
    queryset = with_rule(window(RuntimeSample.objects.all(), since, until))
    count = queryset.count()
    if count > limit:
        queryset = queryset[count - limit :]
    return [
        SampleRow(
            target=target,
            outcome=outcome,
            latency_ms=float(latency),
            cost_usd=float(cost or 0),
            rule=rule or "",
            created_at=created.isoformat(),
        )
        for target, outcome, latency, cost, rule, created in queryset.values_list(  # type: ignore[misc]  # "rule" is annotated
            "target", "outcome", "latency_ms", "cost_usd", "rule", "created_at"
        )
    ]
