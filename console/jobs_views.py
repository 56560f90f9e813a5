"""Console Jobs page: every scheduled job with its last runs, a run's detail, and Run-now (admin only).

Reading needs ``kernel.admin`` (or ``auditor``, read-only); Run-now is a POST
and needs ``kernel.admin``. Run-now queues the job on the Celery broker, so it
runs in a worker through the job runner (lock + JobRun), like a beat run.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from aion import audit
from aion.jobs import discover
from aion.ops.choices import JobTrigger
from aion.ops.models import JobRun
from aion.rbac import Role, role_required

RECENT_RUNS = 50


def _schedule_by_task() -> dict[str, str]:
    """{task name: human interval} from django-celery-beat's tables (what beat really runs)."""
    from django_celery_beat.models import PeriodicTask

    out = {}
    for task in PeriodicTask.objects.select_related("interval", "crontab").filter(enabled=True):
        out[task.task] = str(task.interval or task.crontab or "")
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        out.setdefault(entry["task"], f"every {entry['schedule']:g} seconds (default)")
    return out


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
    runs = JobRun.objects.all()
    selected = request.GET.get("job", "")
    if selected:
        runs = runs.filter(job_name=selected)
    return render(
        request,
        "console/jobs.html",
        {
            "jobs": rows,
            "runs": runs[:RECENT_RUNS],
            "selected": selected,
            "can_run": principal.has_role(Role.KERNEL_ADMIN),
        },
    )


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
    # Queued after the audit row commits; the worker's run records trigger=console.
    transaction.on_commit(lambda: task.apply_async(headers={"aion_trigger": JobTrigger.CONSOLE.value}))
    messages.success(request, f"{name} was queued; its run appears below when a worker picks it up.")
    return redirect("console:jobs")
