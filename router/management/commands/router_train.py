"""``manage.py router_train [--since 7d] [--until ISO] [--dry-run] [--output FILE]``: the learning loop from a shell.

Trains a candidate policy on the stored runtime samples of the window and judges it offline
(``router.training``). A promoted candidate is submitted as a new revision with its report and activated,
through the same services as ``POST /v1/router/policy/revisions`` and ``POST /v1/router/policy/reload``
(audited, published). ``--dry-run`` stores nothing. ``--output`` writes the report (and the candidate) as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aion.auth.principal import system_principal
from aion.errors import DomainError
from router import promotion
from router.samples import parse_since


class Command(BaseCommand):
    help = "Train the router policy on runtime samples; promote the candidate if the offline guard accepts it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default="7d", help="Window start: a duration back from now (7d, 12h) or ISO 8601")
        parser.add_argument("--until", default="", help="Window end (ISO 8601); default now")
        parser.add_argument("--dry-run", action="store_true", help="Train and judge only; store nothing")
        parser.add_argument("--output", default="", help="Write the report and candidate as JSON to this file")
        parser.add_argument("--tenant", default="", help="Tenant recorded on the audit records and events")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = options["tenant"]
        actor = system_principal(tenant, "router_train")
        try:
            since = parse_since(options["since"])
            until = parse_since(options["until"], field="until") if options["until"] else None
            result = promotion.train_policy(since=since, until=until).result
            outcome: dict[str, Any] = {"decision": result.decision, "reason": result.reason, "revision": None}
            if result.promoted and result.candidate and not options["dry_run"]:
                revision, _ = promotion.submit_revision(result.candidate, report=result.report, actor=actor, tenant_id=tenant)
                promotion.activate_revision(revision.number, actor=actor, tenant_id=tenant)
                outcome["revision"] = revision.number
        except DomainError as exc:
            for path, messages in (exc.errors or {}).items():
                self.stderr.write(f"{path}: {'; '.join(messages)}")
            raise CommandError(exc.detail) from exc
        if options["output"]:
            body = {**outcome, "dry_run": options["dry_run"], "report": result.report, "candidate": result.candidate}
            Path(options["output"]).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        samples = result.report["samples"]
        self.stdout.write(
            f"{result.decision}: {result.reason} (samples {samples['total']}: train {samples['train']}, held out {samples['held_out']})"
        )
        if outcome["revision"]:
            self.stdout.write(f"activated: r{outcome['revision']}")
        elif result.promoted and options["dry_run"]:
            self.stdout.write("dry run: nothing stored")
