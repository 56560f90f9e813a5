"""``manage.py outbox_relay [--reset-backoff] [--until-empty] [--wait SECONDS]``: relay the outbox to Kafka now (after an outage).

Exit 0 when it relayed, or when another relay (beat's) holds the lease: that relay is draining the
backlog, so there is nothing to fix. Exit 1 only when Kafka did not take the backlog, with the reason.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from aion.models import OutboxRelayState
from aion.outbox import backlog
from aion.relay import RelayResult, relay

_POLL_SECONDS = 0.5  # how often --wait looks at the lease again


class Command(BaseCommand):
    help = "Relay unpublished outbox rows to Kafka now, optionally clearing the back-off first."
    requires_system_checks: list[str] = []  # an operator's one-shot after an outage: 0.3 s of checks buy nothing here

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reset-backoff", action="store_true", help="retry immediately instead of waiting for the back-off")
        parser.add_argument("--until-empty", action="store_true", help="repeat until the backlog is empty or a run fails")
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="when another relay holds the lease, poll for it this long before giving up (exit 0)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.KAFKA_BOOTSTRAP_SERVERS:
            raise CommandError("KAFKA_BOOTSTRAP_SERVERS is not set; nothing to relay to.")
        wait = options["wait"]
        if wait < 0:
            raise CommandError("--wait must be >= 0 seconds.")
        if options["reset_backoff"]:
            OutboxRelayState.objects.filter(name="outbox").update(next_attempt_at=None)
        deadline = time.monotonic() + wait
        total = 0
        while True:
            result = relay()
            total += result.published
            if result.skipped == "leased" and time.monotonic() < deadline:
                time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                continue
            if result.skipped or result.lease_holder or not options["until_empty"] or result.published == 0 or backlog()[0] == 0:
                break
        count, _ = backlog()
        self.stdout.write(f"Relayed {total} events; {count} still unpublished.")
        if result.skipped == "leased" or result.lease_holder:
            self.stdout.write(self._held_elsewhere(result))
            return
        if count and total == 0:
            raise CommandError(f"Kafka did not take the backlog: {self._reason(result)}")

    @staticmethod
    def _held_elsewhere(result: RelayResult) -> str:
        until = result.lease_expires_at.isoformat() if result.lease_expires_at else "unknown"
        return f"another relay holds the lease (held by {result.lease_holder or 'unknown'}, until {until})"

    @staticmethod
    def _reason(result: RelayResult) -> str:
        if result.skipped == "backing_off":
            until = result.next_attempt_at.isoformat() if result.next_attempt_at else "unknown"
            return f"backing off until {until} after: {result.error or 'unknown error'} (--reset-backoff retries now)"
        if result.error:
            return result.error
        state = OutboxRelayState.objects.filter(name="outbox").first()
        return (state.last_error if state else "") or "unknown error"
