"""Console Jobs page: every scheduled job with its last runs, a run's detail with its log, and Run-now (admin only).

Reading and Run-now need ``kernel.admin``. Run-now queues the job on the Celery broker, so it
runs in a worker through the job runner (lock + JobRun), like a beat run. With htmx, Run-now
answers with the runs panel, which polls until the requested run has finished (no reload).
The frequent ``aion.relay_outbox`` runs are summarised above the list instead of flooding it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from aion import audit
from aion.jobs import discover
from aion.ops.choices import JobRunStatus, JobTrigger
from aion.ops.models import JobRun
from aion.rbac import Role, role_required
from aion.tables import filtered_table
from console.forms import FREQUENT_JOBS, AwaitedRunForm, JobRunFilterSet
from console.tables import JobRunTable

RECENT_RUNS = 50
POLL_SECONDS = 1  # while a Run-now run is awaited
SUMMARY_HOURS = 1
FINAL_STATES = (JobRunStatus.SUCCEEDED, JobRunStatus.FAILED, JobRunStatus.SKIPPED, JobRunStatus.INTERRUPTED)


def _schedule_by_task() -> dict[str, str]:
    """{task name: human interval} from django-celery-beat's tables (what beat really runs)."""
    from django_celery_beat.models import PeriodicTask

    out = {}
    for task in PeriodicTask.objects.select_related("interval", "crontab").filter(enabled=True):
        out[task.task] = str(task.interval or task.crontab or "")
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        out.setdefault(entry["task"], f"every {entry['schedule']:g} seconds (default)")
    return out


def frequent_summary() -> list[dict[str, Any]]:
    """One line per frequent job: its runs and failures in the last hour and its last run (instead of its rows)."""
    since = timezone.now() - timedelta(hours=SUMMARY_HOURS)
    rows = (
        JobRun.objects.filter(job_name__in=FREQUENT_JOBS, started_at__gte=since)
        .values("job_name")
        .annotate(runs=Count("id"), failures=Count("id", filter=Q(status=JobRunStatus.FAILED)), last=Max("started_at"))
    )
    found = {row["job_name"]: row for row in rows}
    empty: dict[str, Any] = {"runs": 0, "failures": 0, "last": None}
    return [dict(found[name]) if name in found else {"job_name": name, **empty} for name in FREQUENT_JOBS]


def _awaited(query: QueryDict) -> tuple[str, datetime | None]:
    """The Run-now run the panel waits for: (job, requested at), from the panel's own poll URL (bad values: none)."""
    form = AwaitedRunForm(query)
    if not form.is_valid() or not form.cleaned_data["awaiting"] or form.cleaned_data["after"] is None:
        return "", None
    return form.cleaned_data["awaiting"], form.cleaned_data["after"]


def _runs_context(request: HttpRequest, query: QueryDict, awaiting: str = "", after: datetime | None = None) -> dict[str, Any]:
    listed = filtered_table(request, JobRunFilterSet, JobRun.objects.all(), JobRunTable, query, per_page=RECENT_RUNS)
    waiting = False
    if awaiting and after is not None:
        waiting = not JobRun.objects.filter(job_name=awaiting, started_at__gte=after, status__in=FINAL_STATES).exists()
    poll = query.copy()
    if waiting:
        poll["awaiting"], poll["after"] = awaiting, (after or timezone.now()).isoformat()
    return {
        "table": listed.table,
        "form": listed.filterset.form,
        "errors": listed.errors,
        "query": listed.query,
        "selected": listed.filterset.form.cleaned_data.get("job", "") if not listed.errors else "",
        "frequent": frequent_summary(),
        "waiting_for": awaiting if waiting else "",
        "poll_query": poll.urlencode(),
        "poll_seconds": POLL_SECONDS,
    }


@require_http_methods(["GET"])
@role_required(Role.KERNEL_ADMIN)
def jobs(request: HttpRequest) -> HttpResponse:
    names = sorted(discover())
    schedules = _schedule_by_task()
    last = {}
    for name in names:
        last[name] = JobRun.objects.filter(job_name=name).order_by("-started_at", "-id").first()
    rows = [{"name": name, "schedule": schedules.get(name, "manual only"), "last": last[name]} for name in names]
    principal = request.principal  # type: ignore[attr-defined]
    context = {"jobs": rows, "can_run": principal.has_role(Role.KERNEL_ADMIN), **_runs_context(request, request.GET)}
    return render(request, "console/jobs.html", context)


@require_http_methods(["GET"])
@role_required(Role.KERNEL_ADMIN)
def runs_panel(request: HttpRequest) -> HttpResponse:
    """The runs panel alone (htmx): polled after Run-now until the awaited run has finished."""
    awaiting, after = _awaited(request.GET)
    query = request.GET.copy()
    for control in ("awaiting", "after"):
        query.pop(control, None)
    return render(request, "console/_runs_panel.html", _runs_context(request, query, awaiting, after))


@require_http_methods(["GET"])
@role_required(Role.KERNEL_ADMIN)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "console/jobs_run.html", {"run": get_object_or_404(JobRun, pk=pk)})


@require_POST
@role_required(Role.KERNEL_ADMIN)
def run_now(request: HttpRequest, name: str) -> HttpResponse:
    from aion.celery import app

    if name not in discover():
        raise Http404("no such job")
    task = app.tasks.get(name)
    if task is None:
        raise Http404("the job is not a Celery task")
    principal = request.principal  # type: ignore[attr-defined]
    with transaction.atomic():
        audit.record(
            "ops.job.run_requested", "job", name, actor=principal, tenant_id=principal.tenant_id, metadata={"trigger": JobTrigger.CONSOLE}
        )
    requested_at = timezone.now()
    # Queued after the audit row commits; the worker's run records trigger=console.
    transaction.on_commit(lambda: task.apply_async(headers={"aion_trigger": JobTrigger.CONSOLE.value}))
    messages.success(request, f"{name} was queued; its run appears below when a worker picks it up.")
    if request.htmx:  # type: ignore[attr-defined]
        # The runs panel of this job, polling until its run has finished: "Run now" shows the run without a reload.
        query = QueryDict(mutable=True)
        query["job"] = name
        return render(request, "console/_runs_panel.html", _runs_context(request, query, name, requested_at))
    return redirect("console:jobs")
