"""The log store: request, audit and task logs, in SQL tables or in MongoDB (MONGO_URL).

- SQL (default): ``ops.RequestLog``, ``ops.TaskLog`` and ``aion.AuditRecord``;
  ``purge_sql_logs()`` (the ``ops.purge_logs`` beat job) deletes rows older than
  the retention of their log type.
- MongoDB: collections ``request_logs``, ``task_logs`` and ``audit_logs`` in
  MONGO_DATABASE, each with a TTL index on ``created_at`` (``retention_mongo``).
  Audit records are still written to SQL first (same transaction as the change)
  and copied to MongoDB once that transaction commits.

Writing a log line must never fail the request or task that produced it, so
every writer here swallows and logs its own errors. Request and task entries go
through ``LogBuffer``: appended in memory on the request path, written in one
batch per AION_LOG_FLUSH_SECONDS by a background thread, and flushed on a clean
exit (atexit), so a SIGTERM'd web or worker process loses none.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion.ops.choices import LogType

logger = logging.getLogger("aion.ops.logstore")

COLLECTIONS = {LogType.REQUEST: "request_logs", LogType.AUDIT: "audit_logs", LogType.TASK: "task_logs"}

# Default retention in days per log type, chosen by AION_ENV (AION_LOG_TTL_DAYS overrides them all).
DEFAULT_TTL_DAYS = {
    "dev": {LogType.REQUEST: 7, LogType.TASK: 10, LogType.AUDIT: 14},
    "prod": {LogType.REQUEST: 30, LogType.TASK: 60, LogType.AUDIT: 90},
}

_client_lock = threading.Lock()
_clients: dict[str, Any] = {}


def ttl_days(log_type: str, *, env: str | None = None, override: int | None = None) -> int:
    """Retention in days for LOG_TYPE: AION_LOG_TTL_DAYS when set (> 0), else the AION_ENV default."""
    override = settings.AION_LOG_TTL_DAYS if override is None else override
    if override:
        return int(override)
    return DEFAULT_TTL_DAYS[env or settings.AION_ENV][LogType(log_type)]


def uses_mongo() -> bool:
    return bool(settings.MONGO_URL)


def mongo_client(url: str | None = None) -> Any:
    """One pymongo client per URL per process (pymongo pools connections itself)."""
    import pymongo

    url = url or settings.MONGO_URL
    with _client_lock:
        client = _clients.get(url)
        if client is None:
            client = pymongo.MongoClient(url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, tz_aware=True)
            _clients[url] = client
        return client


def mongo_database(url: str | None = None, name: str | None = None) -> Any:
    return mongo_client(url)[name or settings.MONGO_DATABASE]


def write(log_type: str, entry: dict[str, Any]) -> None:
    """Store one log entry (``created_at`` defaults to now). Never raises."""
    entry = dict(entry)
    entry.setdefault("created_at", timezone.now())
    try:
        if uses_mongo():
            mongo_database()[COLLECTIONS[LogType(log_type)]].insert_one(entry)
            return
        if LogType(log_type) == LogType.AUDIT:
            return  # the SQL audit log is aion.AuditRecord, written by aion.audit.record()
        from aion.ops.models import RequestLog, TaskLog

        model: type[RequestLog] | type[TaskLog] = RequestLog if LogType(log_type) == LogType.REQUEST else TaskLog
        fields = {f.name for f in model._meta.fields}
        # A savepoint, so a failed insert cannot poison a surrounding transaction.
        with transaction.atomic():
            model._default_manager.create(**{k: v for k, v in entry.items() if k in fields})
    except Exception:
        logger.warning("could not write a %s log entry", log_type, exc_info=True)


def write_many(log_type: str, entries: list[dict[str, Any]]) -> None:
    """Store a batch of entries of one type in one round trip. Raises on failure (the buffer keeps them)."""
    if not entries:
        return
    if uses_mongo():
        mongo_database()[COLLECTIONS[LogType(log_type)]].insert_many(entries, ordered=False)
        return
    if LogType(log_type) == LogType.AUDIT:
        return
    from aion.ops.models import RequestLog, TaskLog

    model: Any = RequestLog if LogType(log_type) == LogType.REQUEST else TaskLog
    fields = {f.name for f in model._meta.fields}
    with transaction.atomic():
        model._default_manager.bulk_create([model(**{k: v for k, v in e.items() if k in fields}) for e in entries], batch_size=500)


class LogBuffer:
    """Log entries kept in memory and written in batches by one background thread per process.

    Bounded: past AION_LOG_BUFFER_MAX_ENTRIES the oldest entries are dropped and counted
    (``aion_log_entries_dropped_total``), so a log store outage cannot exhaust memory. A batch
    that fails to write goes back to the front of the buffer and is retried on the next flush.
    """

    def __init__(self) -> None:
        self._reset()
        # A forked child (Celery prefork) inherits neither the parent's thread nor its entries.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def add(self, log_type: str, entry: dict[str, Any]) -> None:
        entry.setdefault("created_at", timezone.now())
        with self.lock:
            self.entries.append((log_type, entry))
            overflow = len(self.entries) - settings.AION_LOG_BUFFER_MAX_ENTRIES
            if overflow > 0:
                del self.entries[:overflow]
                _dropped(overflow)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="aion-log-buffer", daemon=True)
                self.thread.start()

    def flush(self) -> int:
        """Writes everything buffered now; returns how many entries were written. Never raises."""
        from django.db import connection

        with self.flush_lock:
            with self.lock:
                batch, self.entries = self.entries, []
            if not batch:
                return 0
            by_type: dict[str, list[dict[str, Any]]] = {}
            for log_type, entry in batch:
                by_type.setdefault(log_type, []).append(entry)
            written = 0
            for log_type, entries in by_type.items():
                try:
                    write_many(log_type, entries)
                    written += len(entries)
                except Exception:
                    logger.warning("could not write %d %s log entries; kept for the next flush", len(entries), log_type, exc_info=True)
                    with self.lock:
                        self.entries[:0] = [(log_type, e) for e in entries]
            if threading.current_thread() is self.thread:
                connection.close()  # hand the connection back to the pool between flushes
            return written

    def _run(self) -> None:
        while True:
            self.wake.wait(max(0.05, settings.AION_LOG_FLUSH_SECONDS))
            self.wake.clear()
            self.flush()


def _dropped(count: int) -> None:
    from aion.ops.metrics import LOG_ENTRIES_DROPPED

    LOG_ENTRIES_DROPPED.inc(count)


buffer = LogBuffer()
# Clean shutdowns write what is still buffered: the ASGI lifespan shutdown for the web process
# (aion.asgi; uvicorn re-raises SIGTERM after it, so atexit never runs there), Celery's shutdown
# signals for workers and their pool processes (connect() below), and atexit for everything else.
atexit.register(buffer.flush)


def flush_on_shutdown(**_: Any) -> None:
    buffer.flush()  # a clean shutdown (SIGTERM to uvicorn or Celery) writes what is still buffered


def store_entry(log_type: str, entry: dict[str, Any]) -> None:
    """A request or task log entry: buffered (AION_LOG_FLUSH_SECONDS > 0) or written at once. Never raises."""
    if settings.AION_LOG_FLUSH_SECONDS > 0:
        buffer.add(log_type, dict(entry))
    else:
        write(log_type, entry)


def mirror_audit_record(record: Any) -> None:
    """Copy a committed AuditRecord to MongoDB's ``audit_logs`` (MONGO_URL only)."""
    doc = {
        "audit_id": record.pk,
        "created_at": record.created_at,
        "actor": record.actor,
        "actor_kind": record.actor_kind,
        "tenant_id": record.tenant_id,
        "action": record.action,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "before": record.before,
        "after": record.after,
        "request_id": record.request_id,
        "result": record.result,
        "metadata": record.metadata,
    }
    try:
        mongo_database()[COLLECTIONS[LogType.AUDIT]].insert_one(doc)
    except Exception:
        logger.warning("could not copy audit record %s to MongoDB", record.pk, exc_info=True)


def purge_sql_logs(now: datetime | None = None) -> dict[str, int]:
    """Delete SQL log rows past their retention; returns rows deleted per log type."""
    from aion.models import AuditRecord
    from aion.ops.metrics import LOG_PURGED
    from aion.ops.models import JobRun, RequestLog, TaskLog

    now = now or timezone.now()
    deleted: dict[str, int] = {}
    for log_type, querysets in (
        (LogType.REQUEST, [RequestLog.objects.all()]),
        (LogType.TASK, [TaskLog.objects.all()]),
        (LogType.AUDIT, [AuditRecord.objects.all()]),
    ):
        cutoff = now - timedelta(days=ttl_days(log_type))
        count = 0
        for queryset in querysets:
            count += queryset.filter(created_at__lt=cutoff).delete()[0]
        deleted[log_type.value] = count
        LOG_PURGED.labels(log_type.value).inc(count)
    # Job runs are task logs too; keep the same horizon, but never drop a run still in progress.
    job_cutoff = now - timedelta(days=ttl_days(LogType.TASK))
    deleted["job_runs"] = JobRun.objects.filter(started_at__lt=job_cutoff).exclude(status="running").delete()[0]
    return deleted


# --- capture: the request access log and Celery task outcomes ----------------------------------


class RequestLogHandler(logging.Handler):
    """Attached to the ``aion.request`` logger (the access-log line of MetricsMiddleware)."""

    def emit(self, record: logging.LogRecord) -> None:
        status = getattr(record, "status", None)
        if status is None or not settings.AION_REQUEST_LOG_ENABLED:
            return
        from aion.context import current_request_id

        store_entry(
            LogType.REQUEST,
            {
                "request_id": getattr(record, "request_id", None) or current_request_id() or "",
                "method": str(getattr(record, "method", ""))[:16],
                "path": str(getattr(record, "path", ""))[:2000],
                "route": str(getattr(record, "route", ""))[:200],
                "status": int(status),
                "duration_ms": float(getattr(record, "duration_ms", 0) or 0),
            },
        )


_task_started: dict[str, float] = {}


def _task_prerun(task_id: str | None = None, **_: Any) -> None:
    import time

    if task_id:
        _task_started[task_id] = time.perf_counter()


def _task_postrun(task_id: str | None = None, task: Any = None, state: str | None = None, retval: Any = None, **_: Any) -> None:
    import time

    if not settings.AION_TASK_LOG_ENABLED:
        return
    started = _task_started.pop(task_id or "", None)
    error = ""
    if state == "FAILURE" and isinstance(retval, BaseException):
        error = f"{type(retval).__name__}: {retval}"[:2000]
    store_entry(
        LogType.TASK,
        {
            "task_name": str(getattr(task, "name", "") or "")[:200],
            "task_id": str(task_id or "")[:200],
            "status": str(state or "")[:32],
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "error": error,
        },
    )


def _audit_saved(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    if created and uses_mongo():
        transaction.on_commit(lambda: mirror_audit_record(instance))


def _serve_worker_metrics(**_: Any) -> None:
    """Workers and beat serve /metrics on AION_WORKER_METRICS_PORT (0 = off): their counters live there."""
    port = settings.AION_WORKER_METRICS_PORT
    if not port:
        return
    import os

    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    try:
        start_http_server(port, registry=registry)
    except OSError:
        logger.warning("worker metrics port %s is busy; not serving /metrics here", port)


def connect() -> None:
    """Wire the capture points (called once from the app's ready())."""
    from celery.signals import beat_init, task_postrun, task_prerun, worker_init, worker_process_shutdown, worker_shutdown

    worker_init.connect(_serve_worker_metrics, weak=False, dispatch_uid="aion.ops.worker_metrics")
    beat_init.connect(_serve_worker_metrics, weak=False, dispatch_uid="aion.ops.beat_metrics")
    from django.db.models.signals import post_save

    from aion.models import AuditRecord

    request_logger = logging.getLogger("aion.request")
    if not any(isinstance(h, RequestLogHandler) for h in request_logger.handlers):
        request_logger.addHandler(RequestLogHandler())
    task_prerun.connect(_task_prerun, weak=False, dispatch_uid="aion.ops.task_prerun")
    task_postrun.connect(_task_postrun, weak=False, dispatch_uid="aion.ops.task_postrun")
    worker_process_shutdown.connect(flush_on_shutdown, weak=False, dispatch_uid="aion.ops.flush_logs_process")
    worker_shutdown.connect(flush_on_shutdown, weak=False, dispatch_uid="aion.ops.flush_logs_worker")
    post_save.connect(_audit_saved, sender=AuditRecord, weak=False, dispatch_uid="aion.ops.audit_to_mongo")
