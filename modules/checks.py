"""/readyz entries: the trusted Cosign keys and the module hosts' health (never required: both degrade only)."""

from __future__ import annotations

from typing import Any


def cosign_keys_check() -> dict[str, Any]:
    from modules.trust import ACTIVE, load_keyring

    ring = load_keyring()
    active = [key.key_id for key in ring.keys if key.state() == ACTIVE]
    info: dict[str, Any] = {"active_keys": active, "configured_keys": len(ring.keys)}
    if ring.errors:
        return {"status": "degraded", "error": "; ".join(ring.errors)[:300], **info}
    if not ring.keys:
        return {"status": "disabled", "detail": "no trusted Cosign keys: every module registration is refused", **info}
    if not active:
        return {"status": "degraded", "error": "every trusted Cosign key is retired or not yet valid", **info}
    return {"status": "ok", **info}


def module_hosts_check() -> dict[str, Any]:
    from modules.choices import HealthStatus
    from modules.models import Module

    live = Module.objects.filter(enabled=True, active_version__isnull=False)
    down = sorted(f"{tenant}/{name}" for tenant, name in live.filter(health=HealthStatus.DOWN).values_list("tenant_id", "name"))
    total = live.count()
    if not total:
        return {"status": "disabled", "detail": "no active modules"}
    return {"status": "degraded" if down else "ok", "active": total, "down": down[:20]}
