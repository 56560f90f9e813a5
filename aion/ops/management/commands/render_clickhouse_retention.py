"""``manage.py render_clickhouse_retention``: print clickhouse_retention.sql with AION_CLICKHOUSE_TTL_DAYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion.ops.clickhouse import render_retention


class Command(BaseCommand):
    help = "Print bigdata/sql/clickhouse_retention.sql with the TTL substituted (pipe it to clickhouse-client -n)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, help="Override AION_CLICKHOUSE_TTL_DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.stdout.write(render_retention(options["days"]), ending="")
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
