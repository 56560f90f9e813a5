"""``manage.py outbox_status``: the unpublished backlog per topic, the oldest row's age, failing rows and the relay's back-off."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Count

from aion.models import OutboxEvent, OutboxRelayState
from aion.outbox import backlog


class Command(BaseCommand):
    help = "Show the outbox backlog and the relay state (Kafka recovery)."

    def handle(self, *args: Any, **options: Any) -> None:
        count, age = backlog()
        target = ",".join(settings.KAFKA_BOOTSTRAP_SERVERS) or "(none: KAFKA_BOOTSTRAP_SERVERS unset, events stay in the outbox)"
        self.stdout.write(f"Kafka: {target}")
        self.stdout.write(f"Backlog: {count} unpublished; oldest {age:.0f} s old" if age is not None else f"Backlog: {count} unpublished")
        pending = OutboxEvent.objects.filter(published_at__isnull=True).values("topic").annotate(n=Count("id")).order_by("topic")
        for row in pending:
            self.stdout.write(f"  {row['topic']}: {row['n']}")
        failing = OutboxEvent.objects.filter(published_at__isnull=True, attempts__gt=0).order_by("id")[:10]
        if failing:
            self.stdout.write("Rows that failed (later rows of the same topic and key wait behind them):")
        for event in failing:
            self.stdout.write(f"  {event.event_id} {event.topic} key={event.key} attempts={event.attempts}: {event.last_error[:200]}")
        state = OutboxRelayState.objects.filter(name="outbox").first()
        if state is not None:
            self.stdout.write(
                f"Relay: failures={state.consecutive_failures} next_attempt_at={state.next_attempt_at or '-'} "
                f"lease={state.holder or '-'} last_success_at={state.last_success_at or '-'}"
            )
            if state.last_error:
                self.stdout.write(f"Last error: {state.last_error[:300]}")
