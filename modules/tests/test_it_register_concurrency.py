"""Concurrent registrations of the same release on PostgreSQL: one version row, one creation, the rest idempotent."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from aion.auth.principal import system_principal
from aion.testing.factories import TENANT
from aion.testing.module_releases import build_manifest
from modules import services
from modules.models import ModuleActivation, ModuleVersion


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_register_and_activate_creates_exactly_one_version(key, require_postgres):
    manifest = build_manifest(key)  # one signed document: ECDSA signatures differ on every signing
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def worker() -> None:
        try:
            barrier.wait()
            result = services.register_module(TENANT, manifest, actor=system_principal(TENANT, "tests"), activate=True)
            outcomes.append(result.created)
        except Exception as exc:  # surfaced by the assertion below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(map(str, outcomes)) == ["False", "False", "False", "True"], outcomes
    assert ModuleVersion.objects.count() == 1
    assert ModuleActivation.objects.count() == 1
