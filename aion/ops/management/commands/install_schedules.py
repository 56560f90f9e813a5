"""``manage.py install_schedules [--reset]``: install the default beat schedule into django-celery-beat."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from aion.ops.schedules import install_schedules


class Command(BaseCommand):
    help = "Create the missing default periodic tasks (admins edit them in Django admin); --reset restores the defaults."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reset", action="store_true", help="Also rewrite existing entries back to the defaults")

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = install_schedules(reset=options["reset"])
        for key in ("created", "reset", "kept"):
            for name in outcome[key]:
                self.stdout.write(f"{key}: {name}")
