"""Tenant-owned models (aion/tenancy.py): one abstract base, and ``for_tenant`` never leaks another tenant's rows."""

from __future__ import annotations

import pytest
from django.apps import apps

from aion.models import ApiKey
from aion.tenancy import TenantOwned, TenantQuerySet

# Kernel's models move onto TenantOwned with the kernel's redesign (issue 19 §4), in its own branch.
NOT_YET_MOVED: set[str] = set()


def test_every_model_with_a_tenant_id_is_tenant_owned():
    owned = [m for m in apps.get_models() if any(f.name == "tenant_id" for f in m._meta.get_fields())]
    assert len(owned) >= 17  # the guard: the walk found the models (hooks, memory, modules, router, aion)
    missing = [m._meta.label for m in owned if not issubclass(m, TenantOwned) and m._meta.app_label not in NOT_YET_MOVED]
    assert missing == []
    for model in owned:
        if issubclass(model, TenantOwned):
            assert isinstance(model.objects.all(), TenantQuerySet), model._meta.label


@pytest.mark.django_db
def test_for_tenant_gives_only_that_tenants_rows():
    for tenant, prefix in (("acme", "a1"), ("acme", "a2"), ("globex", "g1")):
        ApiKey.objects.create(prefix=prefix, name=prefix, tenant_id=tenant, key_hash=prefix * 32)
    assert sorted(ApiKey.objects.for_tenant("acme").values_list("prefix", flat=True)) == ["a1", "a2"]
    assert list(ApiKey.objects.for_tenant("globex").values_list("prefix", flat=True)) == ["g1"]
    assert not ApiKey.objects.for_tenant("").exists()
    assert not ApiKey.objects.for_tenant("initech").exists()
    # It composes: a filtered queryset stays tenant-scoped.
    assert list(ApiKey.objects.filter(prefix__startswith="a").for_tenant("globex")) == []
