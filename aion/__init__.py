"""AION Control: the Django project and the platform code every app shares.

``aion`` owns the cross-cutting pieces, once: settings, identity and RBAC
(``aion.auth``, ``aion.rbac``), tenancy, problem errors, rate limits,
idempotency, audit, the event outbox, health, metrics and structured logs.
"""

from aion.celery import app as celery_app

__all__ = ["celery_app"]
