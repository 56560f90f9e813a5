"""Tenant-owned rows: one abstract base with the ``tenant_id`` column and the queryset that scopes by it.

Every app's tenant-owned model derives from ``TenantOwned`` (the column is declared here, once, exactly
as the migrations made it: a 64-character indexed string), and reads go through
``Model.objects.for_tenant(tenant_id)`` so one tenant never sees another's rows by accident (the API's
``TenantScopedMixin`` uses it for every viewset).
"""

from __future__ import annotations

from typing import Self

from django.db import models


class TenantQuerySet(models.QuerySet):
    """A queryset of tenant-owned rows."""

    def for_tenant(self, tenant_id: str) -> Self:
        """Only TENANT_ID's rows (an empty or unknown tenant gets none of anyone's)."""
        return self.filter(tenant_id=tenant_id)


class TenantOwned(models.Model):
    """A row that belongs to one tenant (``tenant_id``), with ``objects.for_tenant(tenant_id)``."""

    tenant_id = models.CharField(max_length=64, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
