"""Personas and credentials for tests: an owner, a teammate and an outsider of another tenant."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from aion.auth.keys import generate_key, hash_key
from aion.models import ApiKey, UserTenant

TENANT = "acme"
OTHER_TENANT = "globex"


def make_api_key(roles: Iterable[str], tenant: str = TENANT, name: str = "test key", **fields: Any) -> tuple[str, ApiKey]:
    raw, prefix = generate_key()
    key = ApiKey.objects.create(prefix=prefix, name=name, tenant_id=tenant, roles=sorted(roles), key_hash=hash_key(raw), **fields)
    return raw, key


def api_client(raw_key: str | None = None, **headers: str) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_X_API_KEY=raw_key, **headers)
    elif headers:
        client.credentials(**headers)
    return client


def client_with_roles(roles: Iterable[str], tenant: str = TENANT) -> APIClient:
    raw, _ = make_api_key(roles, tenant)
    return api_client(raw)


def make_user(username: str, roles: Iterable[str] = (), tenant: str = TENANT, password: str = "pw-for-tests-only") -> User:  # noqa: S107 - test persona
    user = User.objects.create_user(username=username, password=password)
    for role in roles:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    UserTenant.objects.create(user=user, tenant_id=tenant)
    return user
