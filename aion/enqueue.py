"""One way to hand work to Celery: by task name, after the transaction commits.

Services enqueue through here, so a ``services`` module never imports its app's ``tasks``
module (which imports the services back: the circle issue 19 removed)::

    from aion.enqueue import enqueue

    enqueue("router.execute_task", str(task.id), queue=settings.AION_ROUTER_TASK_QUEUE or None)
    enqueue("hooks.send_deliveries", chunk, countdown=30)
    enqueue("memory.process_upload", str(upload.id), queue=current_queue())

``enqueue(task: str | Task, *args, countdown=None, queue=None, on_commit=True, **kwargs) -> None``

- ``task``: the registered Celery name (``"app.task"``), or a task object from code that may import it.
- ``*args`` / ``**kwargs``: the task's own arguments (JSON-serialisable).
- ``countdown``: seconds to wait before a worker runs it (``None`` or ``0``: at once).
- ``queue``: the broker queue (``None``: Celery's default routing).
- ``on_commit``: ``True`` (the default) sends from ``transaction.on_commit``, so a worker never sees a
  row that is not committed, and a rolled-back transaction sends nothing. Outside a transaction
  Django runs the callback at once. ``False`` sends now (for callers already past the commit).

A broker outage never raises into the caller: the database row is the source of truth and each
app's beat sweep sends what is left (router requeue, hooks retry sweep, memory stale uploads). The
failure is logged with the task name. Tasks run inline under ``task_always_eager`` (tests), because
the task object is looked up in the app's registry rather than sent blind with ``send_task``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app, current_task
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(
    task: str | Task, *args: Any, countdown: float | None = None, queue: str | None = None, on_commit: bool = True, **kwargs: Any
) -> None:
    """Send ``task(*args, **kwargs)`` to a worker after the current transaction commits (see the module docstring)."""

    def send() -> None:
        name = task if isinstance(task, str) else task.name
        options: dict[str, Any] = {}
        if countdown:
            options["countdown"] = countdown
        if queue:
            options["queue"] = queue
        try:
            resolve(task).apply_async(args=args, kwargs=kwargs or None, **options)
        except Exception:  # the row is the source of truth; the app's sweep sends it later
            logger.exception("could not enqueue %s; the sweep will send it", name, extra={"task": name})

    if on_commit:
        transaction.on_commit(send, robust=True)
    else:
        send()


def resolve(task: str | Task) -> Task:
    """The registered task object for a name. The web process has not imported every ``tasks`` module
    (Celery's autodiscovery runs when a worker starts), so a miss runs autodiscovery once and looks again."""
    if not isinstance(task, str):
        return task
    registry = current_app.tasks
    if task not in registry:
        current_app.loader.import_default_modules()  # fires autodiscover_tasks(): imports each installed app's tasks module
    try:
        return registry[task]
    except KeyError:
        raise LookupError(f"no Celery task is registered as {task!r}") from None


def current_queue() -> str | None:
    """The queue the running task came from (``None`` outside a worker, or when it ran eagerly), so a
    pipeline step queued by a task stays on that task's queue when a deployment routes work."""
    request = getattr(current_task, "request", None)
    if request is None or request.is_eager:
        return None
    routing_key = (getattr(request, "delivery_info", None) or {}).get("routing_key")
    return str(routing_key) if routing_key else None
