"""``manage.py kernel_rollback ID --tenant T --reason R``: roll back an applied proposal from a shell.

For when the API and the Console are unreachable. It acts as ``system:cli`` with kernel.admin
through the same ``rollback_proposal`` (audit record, event, ``k_rollbacks_total``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion.auth.principal import system_principal
from aion.errors import DomainError
from aion.roles import Role
from kernel import services


class Command(BaseCommand):
    help = "Roll back an applied kernel proposal (restores the parent revision as a new revision)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("proposal_id")
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = system_principal(options["tenant"], "cli", roles=frozenset({Role.KERNEL_ADMIN.value}))
        try:
            proposal = services.get_proposal_for_tenant(options["tenant"], options["proposal_id"])
            proposal = services.rollback_proposal(proposal, actor, reason=options["reason"])
        except DomainError as refusal:
            raise CommandError(f"{refusal.code}: {refusal.detail}") from refusal
        revision = proposal.rollback_revision.number if proposal.rollback_revision else "?"
        self.stdout.write(f"proposal {proposal.pk} rolled back; {proposal.scope} is now at revision {revision}")
