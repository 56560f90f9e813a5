"""``manage.py router_policy reload|rollback N|show|bootstrap``: the policy lifecycle without the API (same services).

``bootstrap`` stores the policy file as revision 1 when no revision is active, and is a no-op after:
the migrate job and ``scripts/dev.py run`` call it, so the first revision is an explicit write, never a read.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aion.auth.principal import system_principal
from aion.errors import DomainError
from router import services
from router.models import PolicyRevision, PolicyState
from router.policy import PolicyInvalid


class Command(BaseCommand):
    help = "Reload the router policy file, roll back to a stored revision, show the active one, or bootstrap revision 1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["reload", "rollback", "show", "bootstrap"])
        parser.add_argument("revision", nargs="?", type=int)
        parser.add_argument("--tenant", default="", help="Tenant recorded on the audit record and event")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = system_principal(options["tenant"], "manage.py")
        try:
            if options["action"] == "reload":
                revision, created = services.reload_policy(actor=actor, tenant_id=options["tenant"])
            elif options["action"] == "bootstrap":
                revision, created = services.bootstrap_policy()
            elif options["action"] == "rollback":
                if not options["revision"]:
                    raise CommandError("rollback needs a revision number")
                revision, created = services.rollback_policy(options["revision"], actor=actor, tenant_id=options["tenant"])
            else:
                number = PolicyState.objects.filter(pk=1).values_list("active_number", flat=True).first() or 0
                active = PolicyRevision.objects.filter(number=number).first()
                self.stdout.write(f"active: r{number} {active.sha256 if active else '-'}")
                return
        except PolicyInvalid as exc:
            for path, messages in exc.errors.items():
                self.stderr.write(f"{path}: {'; '.join(messages)}")
            raise CommandError("the policy is invalid; the active policy is unchanged") from exc
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"{'activated' if created else 'unchanged'}: r{revision.number} {revision.sha256}")
