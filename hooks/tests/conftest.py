"""Fixtures of the hooks tests: hook sources from AION_HOOK_SOURCES, signed requests, kernel proposals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from aion.testing.hook_requests import (
    HOOK_SOURCES,
    submit_proposal,
)
from hooks.sources import clear_cache


@pytest.fixture(autouse=True)
def hooks_settings(settings: Any) -> Any:
    settings.AION_HOOK_SOURCES = HOOK_SOURCES
    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    # Unique key prefixes: other test runs share the machine's Redis.
    run = uuid.uuid4().hex[:8]
    settings.AION_RATE_LIMIT_KEY_PREFIX = f"test:hooks:{run}:rl"
    settings.AION_HOOKS_IDEMPOTENCY_PREFIX = f"test:hooks:{run}:inbound:"
    settings.AION_IDEMPOTENCY_REDIS_URL = ""  # the database claim unless a test opts into Redis
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast Console personas
    clear_cache()
    yield settings
    clear_cache()


@pytest.fixture()
def proposal(db: None) -> Any:
    return submit_proposal()
