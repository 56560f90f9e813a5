"""The default beat schedule, installed into django-celery-beat's tables so admins can edit it.

``install_schedules()`` creates the entries of ``settings.CELERY_BEAT_SCHEDULE``
that are missing (``reset=True`` also rewrites existing ones back to the
defaults). ``DatabaseScheduler`` is django-celery-beat's scheduler, except that
beat start-up installs only missing entries, so an interval an admin changed
in Django admin survives a beat restart (upstream overwrites it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django_celery_beat.schedulers import DatabaseScheduler as UpstreamDatabaseScheduler


def install_schedules(*, reset: bool = False, schedule: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Install the default periodic tasks; returns {"created": [...], "reset": [...], "kept": [...]}."""
    from celery import current_app
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    schedule = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    outcome: dict[str, list[str]] = {"created": [], "reset": [], "kept": []}
    with transaction.atomic():
        for name, fields in schedule.items():
            exists = PeriodicTask.objects.filter(name=name).exists()
            if exists and not reset:
                outcome["kept"].append(name)
                continue
            ModelEntry.from_entry(name, app=current_app, **fields)
            outcome["reset" if exists else "created"].append(name)
    return outcome


class DatabaseScheduler(UpstreamDatabaseScheduler):
    """Beat's scheduler: the defaults are installed once, then the database (admin) rules."""

    def setup_schedule(self) -> None:
        from django_celery_beat.models import PeriodicTask

        self.install_default_entries(self.schedule)
        defaults = dict(self.app.conf.beat_schedule)
        existing = set(PeriodicTask.objects.filter(name__in=list(defaults)).values_list("name", flat=True))
        self.update_from_dict({name: fields for name, fields in defaults.items() if name not in existing})
