"""The one job runner every scheduled (beat) job goes through.

Usage, in an app's ``tasks.py``::

    @shared_task(name="kernel.expire_proposals")
    @scheduled_job("kernel.expire_proposals")
    def expire_proposals() -> int: ...

Each call of the decorated function (by beat through Celery, by
``manage.py run_job <name>`` or by the Console's Run-now button):

- takes a lock named after the job so one run goes at a time across every
  process (a PostgreSQL advisory lock; a file lock under AION_VAR_DIR on the
  embedded SQLite default). A run that finds the lock held is recorded as
  ``skipped`` and returns None;
- records an ``ops.JobRun`` row: start, end, status, a log excerpt and the
  traceback of a failure (which is re-raised so Celery sees it too).

The bookkeeping lives in ``aion.ops.runner``. Apps import this as ``aion.jobs`` (a re-export), so
``aion.ops`` holds the runner whole and nothing in it imports back out to ``aion.jobs``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.apps import apps

from aion.ops.runner import execute, trigger_context

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Callable[..., Any]] = {}


def scheduled_job(name: str) -> Callable[[F], F]:
    def decorator(fn: F) -> F:
        @wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            return execute(name, fn, args, kwargs)

        run.job_name = name  # type: ignore[attr-defined]
        REGISTRY[name] = run
        return run  # type: ignore[return-value]

    return decorator


def discover() -> dict[str, Callable[..., Any]]:
    """Import every installed app's ``tasks`` module so REGISTRY holds every job."""
    for config in apps.get_app_configs():
        try:
            importlib.import_module(f"{config.name}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.tasks":
                raise
    return REGISTRY


def run_registered(name: str, *, trigger: str = "manual") -> Any:
    """Run the job NAME in this process (``manage.py run_job``); KeyError if no such job."""
    job = discover()[name]
    with trigger_context(trigger):
        return job()
