"""``manage.py run_job <name>``: run one scheduled job now, through the job runner (lock + JobRun)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion.ops.jobs import discover, run_registered


class Command(BaseCommand):
    help = "Run a scheduled job by name in this process (recorded in JobRun; skipped if another run holds its lock)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", nargs="?", help="Job name, e.g. ops.nightly_backup")
        parser.add_argument("--list", action="store_true", help="List the registered jobs")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = discover()
        if options["list"] or not options["name"]:
            for name in sorted(jobs):
                self.stdout.write(name)
            return
        name = options["name"]
        if name not in jobs:
            raise CommandError(f"no job named {name!r}; known jobs: {', '.join(sorted(jobs))}")
        from aion.ops.models import JobRun

        try:
            result = run_registered(name, trigger="manual")
        except Exception as exc:
            raise CommandError(f"{name} failed: {type(exc).__name__}: {exc}") from exc
        run = JobRun.objects.filter(job_name=name).order_by("-started_at", "-id").first()
        status = run.status if run else "unknown"
        self.stdout.write(f"{name}: {status} {result!r}"[:2000])
