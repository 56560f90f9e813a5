"""The one job runner every scheduled (beat) job goes through.

Usage, in an app's ``tasks.py``::

    @shared_task(name="kernel.expire_proposals")
    @scheduled_job("kernel.expire_proposals")
    def expire_proposals() -> int: ...

The runner records each run, holds a lock so one run goes at a time, and lets
``manage.py run_job <name>`` run it by hand. (Filled in by the Operations
issue; until then it is a pass-through that keeps the registry.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Callable[..., Any]] = {}


def scheduled_job(name: str) -> Callable[[F], F]:
    def decorator(fn: F) -> F:
        @wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        REGISTRY[name] = run
        return run  # type: ignore[return-value]

    return decorator
