"""AION Control: the Django project and the platform code every app shares.

``aion`` owns the cross-cutting pieces, once: settings, identity and RBAC
(``aion.auth``, ``aion.rbac``), tenancy, problem errors, rate limits,
idempotency, audit, the event outbox, health, metrics and structured logs.
"""

import os

# prometheus_client's multiprocess mode writes one file per process into PROMETHEUS_MULTIPROC_DIR from the first
# metric a module creates, and does not create the folder. Every process imports this package first (uvicorn
# aion.asgi, celery -A aion, manage.py through aion.settings), before any metric exists; so the folder is made
# here, once, even when a volume mounted over /tmp hides the image's /tmp/prometheus (deploy/k8s/*.yaml).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from aion.celery import app as celery_app

__all__ = ["celery_app"]
