"""The key-rotation report: trusted keys with their windows, and how every active module verifies today.

Read-only (a dry run of ``services.reverify_modules``); shared by the API, the Console and ``modules_keys``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from django.utils import timezone

from modules.models import Module
from modules.trust import KeyRing, load_keyring


def key_rotation_report(tenant_id: str | None, *, keyring: KeyRing | None = None, now: datetime | None = None) -> dict[str, Any]:
    from modules.services import reverify_modules

    now = now or timezone.now()
    ring = keyring if keyring is not None else load_keyring()
    results = reverify_modules(tenant_id, enforce=False, keyring=ring, now=now)
    verifying = Counter(result.key_id for result in results if result.ok)
    registered = Counter(result.registered_key_id for result in results)
    keys = [
        {
            "key_id": key.key_id,
            "state": key.state(now),
            "source": key.source,
            "fingerprint": key.fingerprint,
            "not_before": key.not_before.isoformat() if key.not_before else None,
            "not_after": key.not_after.isoformat() if key.not_after else None,
            "retired": key.retired,
            "modules_verified_now": verifying.get(key.key_id, 0),
            "modules_registered_with": registered.get(key.key_id, 0),
        }
        for key in sorted(ring.keys, key=lambda k: k.key_id)
    ]
    modules = [
        {
            "module": result.module.name,
            "version": result.version,
            "registered_key_id": result.registered_key_id,
            "verifies_now": result.ok,
            "key_id": result.key_id,
            "reason": result.reason,
            "detail": result.detail,
        }
        for result in results
    ]
    disabled = Module.objects.filter(enabled=False)
    if tenant_id:
        disabled = disabled.filter(tenant_id=tenant_id)
    return {
        "generated_at": now.isoformat(),
        "keys": keys,
        "key_errors": ring.errors,
        "modules": modules,
        "would_fail": sum(1 for result in results if not result.ok),
        "disabled_modules": [{"module": m.name, "reason": m.disabled_reason} for m in disabled.order_by("name")],
    }
