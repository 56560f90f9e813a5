"""Creates the first Console admin (once): password from AION_ADMIN_PASSWORD, or generated and printed once."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from aion.models import UserTenant
from aion.roles import ALL_ROLES


class Command(BaseCommand):
    help = "Create the first Console admin with every role (no-op when one exists)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--tenant", default=None)

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for role in sorted(ALL_ROLES):
            Group.objects.get_or_create(name=role)
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("Console admin already exists; nothing to do.")
            return
        password = settings.AION_ADMIN_PASSWORD
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        user = User.objects.create_superuser(username=options["username"], email="", password=password)
        user.groups.set(Group.objects.filter(name__in=ALL_ROLES))
        UserTenant.objects.create(user=user, tenant_id=options["tenant"] or settings.AION_DEFAULT_TENANT)
        if generated:
            # Printed once, to the operator's terminal only (never logged).
            self.stdout.write(self.style.WARNING(f"Created Console admin {user.username!r} with password: {password}"))
        else:
            self.stdout.write(f"Created Console admin {user.username!r} (password from AION_ADMIN_PASSWORD).")
