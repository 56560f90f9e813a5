"""kernel.agent API keys (issue 17): bound to a host or a pool by ``apikey_create --host/--pool``, carried by rotation
and by the Principal; no other key is bound, and an agent key carries no other role."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from aion.auth import keys
from aion.auth.authentication import ApiKeyAuthentication
from aion.auth.services import rotate_api_key
from aion.models import ApiKey, AuditRecord
from aion.roles import Role
from aion.testing.factories import TENANT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_env_keys():
    keys.reload_env_keys("")
    keys.forget_cached_principals()
    yield
    keys.forget_cached_principals()


def create(*args: str) -> tuple[ApiKey, str]:
    out = io.StringIO()
    call_command("apikey_create", "--name", "node agent", "--tenant", TENANT, "--roles", Role.KERNEL_AGENT, *args, stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    return ApiKey.objects.get(key_hash=keys.hash_key(raw)), raw


def test_a_host_bound_key_and_its_principal():
    key, raw = create("--host", "gpu-1")
    assert key.host == "gpu-1" and key.pool == "" and key.roles == [Role.KERNEL_AGENT]
    principal = ApiKeyAuthentication.principal_for_key(raw)
    assert principal is not None and principal.host == "gpu-1" and principal.pool == ""
    audit = AuditRecord.objects.get(action="apikey.created", resource_id=key.prefix)
    assert audit.after["host"] == "gpu-1"


def test_a_pool_bound_key_survives_rotation():
    key, _ = create("--pool", "gpu")
    raw, new = rotate_api_key(key.prefix, actor="operator")
    assert new.pool == "gpu" and new.host == ""
    assert ApiKeyAuthentication.principal_for_key(raw).pool == "gpu"  # type: ignore[union-attr]


def test_the_list_shows_the_binding():
    create("--pool", "cpu")
    out = io.StringIO()
    call_command("apikey_list", stdout=out)
    assert "pool=cpu" in out.getvalue()


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "must be bound"),
        (("--host=bad_host_",), "bad host name"),
        (("--pool", "a" * 70), "bad pool name"),
    ],
)
def test_refused_agent_keys(args, message):
    with pytest.raises(CommandError, match=message):
        create(*args)
    assert not ApiKey.objects.exists()


def test_only_agent_keys_are_bound_and_agent_keys_carry_one_role():
    with pytest.raises(CommandError, match=r"only kernel\.agent keys"):
        call_command(
            "apikey_create", "--name", "x", "--tenant", TENANT, "--roles", Role.KERNEL_ADMIN, "--host", "gpu-1", stdout=io.StringIO()
        )  # fmt: skip
    with pytest.raises(CommandError, match="no other role"):
        call_command(
            "apikey_create", "--name", "x", "--tenant", TENANT, "--roles", f"{Role.KERNEL_AGENT},{Role.KERNEL_ADMIN}", "--pool", "gpu",
            stdout=io.StringIO(),
        )  # fmt: skip
    assert not ApiKey.objects.exists()
