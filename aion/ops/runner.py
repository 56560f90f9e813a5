"""The job runner's bookkeeping: the per-job lock and the JobRun record of every run.

``aion.ops.jobs.scheduled_job`` (``aion.jobs``) calls ``execute()``; nothing else should.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from aion.ops.choices import JobRunStatus, JobTrigger
from aion.ops.metrics import JOB_DURATION, JOB_RUNS

logger = logging.getLogger("aion.jobs")

_trigger: contextvars.ContextVar[str] = contextvars.ContextVar("aion_job_trigger", default=JobTrigger.BEAT.value)
LOG_EXCERPT_LINES = 50
LOG_EXCERPT_CHARS = 8000


@contextlib.contextmanager
def trigger_context(trigger: str) -> Iterator[None]:
    token = _trigger.set(trigger)
    try:
        yield
    finally:
        _trigger.reset(token)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, from the job name."""
    return int.from_bytes(hashlib.sha256(f"aion.job:{name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def job_lock(name: str) -> Iterator[bool]:
    """Yield True when this process now holds the job's lock, False when another run does."""
    if connection.vendor == "postgresql":
        key = advisory_key(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            acquired = bool(cursor.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired and connection.connection is not None:
                # A job that closed its connection already released the session lock.
                with contextlib.suppress(Exception), connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    # SQLite (one host): an exclusive, non-blocking flock on a file per job.
    import fcntl

    lock_dir = Path(settings.VAR_DIR) / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    handle = open(lock_dir / f"job-{safe}.lock", "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            acquired = True
        except BlockingIOError:
            acquired = False
        yield acquired
    finally:
        handle.close()  # closing releases the flock


class _ExcerptHandler(logging.Handler):
    """Keeps the last log lines this thread emits while the job runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: deque[str] = deque(maxlen=LOG_EXCERPT_LINES)
        self.thread_id = __import__("threading").get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id:
            return
        try:
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - a bad log call must not break the job
            return

    def text(self) -> str:
        return "\n".join(self.lines)[-LOG_EXCERPT_CHARS:]


def _save(run: Any, **fields: Any) -> None:
    for key, value in fields.items():
        setattr(run, key, value)
    try:
        run.save(update_fields=list(fields))
    except Exception:
        logger.exception("could not record the run of %s", run.job_name)


def current_trigger() -> str:
    """manual/console when set by run_job or carried in the Celery message's headers; else beat."""
    trigger = _trigger.get()
    if trigger != JobTrigger.BEAT:
        return trigger
    from celery import current_task

    request = getattr(current_task, "request", None) if current_task else None
    headers = getattr(request, "headers", None) or {}
    value = getattr(request, "aion_trigger", None) or headers.get("aion_trigger")
    return value if value in JobTrigger.values else trigger


def execute(name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from aion.ops.models import JobRun

    trigger = current_trigger()
    started = time.perf_counter()
    with job_lock(name) as acquired:
        if not acquired:
            JobRun.objects.create(
                job_name=name,
                status=JobRunStatus.SKIPPED,
                trigger=trigger,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                finished_at=timezone.now(),
                duration_ms=0,
                log_excerpt="another run holds the lock",
            )
            JOB_RUNS.labels(name, JobRunStatus.SKIPPED).inc()
            logger.info("job skipped: another run holds the lock", extra={"job": name})
            return None
        # We hold the lock, so any row still "running" belongs to a process that died.
        JobRun.objects.filter(job_name=name, status=JobRunStatus.RUNNING).update(
            status=JobRunStatus.INTERRUPTED, finished_at=timezone.now()
        )
        run = JobRun.objects.create(job_name=name, trigger=trigger, hostname=socket.gethostname(), pid=os.getpid())
        handler = _ExcerptHandler()
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            elapsed = time.perf_counter() - started
            root.removeHandler(handler)
            _save(
                run,
                status=JobRunStatus.FAILED,
                finished_at=timezone.now(),
                duration_ms=int(elapsed * 1000),
                log_excerpt=handler.text(),
                traceback="".join(traceback.format_exception(exc))[-LOG_EXCERPT_CHARS:],
            )
            JOB_RUNS.labels(name, JobRunStatus.FAILED).inc()
            JOB_DURATION.labels(name).observe(elapsed)
            raise
        elapsed = time.perf_counter() - started
        root.removeHandler(handler)
        _save(
            run,
            status=JobRunStatus.SUCCEEDED,
            finished_at=timezone.now(),
            duration_ms=int(elapsed * 1000),
            log_excerpt=handler.text(),
            result=repr(result)[:2000],
        )
        JOB_RUNS.labels(name, JobRunStatus.SUCCEEDED).inc()
        JOB_DURATION.labels(name).observe(elapsed)
        return result
