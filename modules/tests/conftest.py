"""Modules test fixtures: Cosign key pairs generated in the test, and correctly signed manifests.

Signatures are made as ``cosign attest-blob --key`` makes them, written out here rather than taken
from ``modules.signing``: a DSSE envelope whose signature is ECDSA P-256 SHA-256 (base64 DER) over
the PAE ``DSSEv1 <len(type)> <type> <len(body)> <body>`` of an in-toto statement."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aion.testing.factories import TENANT, client_with_roles
from aion.testing.module_host import ServedHost, stop_module_host
from aion.testing.module_releases import (
    CosignKey,
    KeyRingFixture,
    build_manifest,
)


@pytest.fixture()
def keys(tmp_path: Path, settings: Any) -> KeyRingFixture:
    return KeyRingFixture(tmp_path, settings)


@pytest.fixture()
def key(keys: KeyRingFixture) -> CosignKey:
    return keys.new("k2026")


@pytest.fixture()
def manifest_for() -> Callable[..., dict[str, Any]]:
    return build_manifest


@pytest.fixture()
def admin_client(db: None) -> Any:
    return client_with_roles(["modules.admin"], TENANT)


@pytest.fixture()
def served_hosts() -> Any:
    """Module hosts a test starts (``served_hosts.append(host)``), stopped after it whatever happens."""
    hosts: list[ServedHost] = []
    yield hosts
    for host in hosts:
        stop_module_host(host)
