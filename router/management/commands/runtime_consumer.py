"""``manage.py runtime_consumer [--once] [--max-seconds N] [--heartbeat-file PATH]``: aion.metrics.runtime into the router's statistics.

A long-running process of its own (deploy/k8s/runtime-consumer.yaml), consumer group ``control-plane``; the
loop is ``router.runtime_ingest.RuntimeConsumer``. SIGTERM or SIGINT finish the batch in hand, commit it and
close the consumer (leaving the group at once, so its partitions move without waiting for a session timeout).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aion.topics import CONTROL_PLANE_GROUP, METRICS_RUNTIME


class Command(BaseCommand):
    help = f"Consume {METRICS_RUNTIME} (group {CONTROL_PLANE_GROUP}) into the router's runtime statistics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Consume what the topic holds now, then exit")
        parser.add_argument("--max-seconds", type=float, default=None, help="Exit after this long (with --once: at the latest)")
        parser.add_argument("--heartbeat-file", type=Path, default=None, help="Touched after every poll (liveness)")

    def handle(self, *args: Any, **options: Any) -> None:
        from aion.ops.logstore import _serve_worker_metrics
        from router.runtime_ingest import RuntimeConsumer

        max_seconds = options["max_seconds"]
        if max_seconds is not None and max_seconds <= 0:
            raise CommandError("--max-seconds must be > 0")
        if options["once"] and max_seconds is None:
            max_seconds = 120.0  # --once must end even when the group never gets an assignment
        try:
            runner = RuntimeConsumer(heartbeat=options["heartbeat_file"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        _serve_worker_metrics()  # /metrics on AION_WORKER_METRICS_PORT, as workers serve theirs (0 = off)
        previous = {sig: signal.signal(sig, lambda *_: runner.stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            summary = runner.run(once=options["once"], max_seconds=max_seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())  # its live gauges (the lag) leave the merged view
        samples = summary.samples
        self.stdout.write(
            f"{summary.records} records in {summary.batches} batches: {samples.stored} stored, {samples.duplicates} duplicates, "
            f"{samples.invalid} invalid, {samples.skipped} skipped; lag {sum(summary.lag.values())}"
        )
