"""``manage.py outbox_relay [--reset-backoff] [--until-empty]``: relay the outbox to Kafka now (after an outage)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from aion.models import OutboxRelayState
from aion.outbox import backlog
from aion.relay import relay_once


class Command(BaseCommand):
    help = "Relay unpublished outbox rows to Kafka now, optionally clearing the back-off first."
    requires_system_checks: list[str] = []  # an operator's one-shot after an outage: 0.3 s of checks buy nothing here

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reset-backoff", action="store_true", help="retry immediately instead of waiting for the back-off")
        parser.add_argument("--until-empty", action="store_true", help="repeat until the backlog is empty or a run fails")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            raise CommandError("KAFKA_BOOTSTRAP_SERVERS is not set; nothing to relay to.")
        if options["reset_backoff"]:
            OutboxRelayState.objects.filter(name="outbox").update(next_attempt_at=None)
        total = 0
        while True:
            sent = relay_once()
            total += sent
            if not options["until_empty"] or sent == 0 or backlog()[0] == 0:
                break
        count, _ = backlog()
        self.stdout.write(f"Relayed {total} events; {count} still unpublished.")
        if count and total == 0:
            state = OutboxRelayState.objects.filter(name="outbox").first()
            raise CommandError(f"Kafka did not take the backlog: {state.last_error if state else 'unknown error'}")
