"""Read-side queries other apps use (the router sees active modules as ``local`` targets).

The signature of ``active_module_targets`` and the ``ModuleTarget`` dataclass are the contract with the router.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModuleTarget:
    name: str
    version: str
    endpoint: str
    intents: tuple[str, ...]
    pool: str = "cpu"
    health: str = "unknown"  # "up", "degraded", "down" or "unknown"
    metadata: dict[str, str] = field(default_factory=dict)


def active_module_targets(tenant_id: str) -> list[ModuleTarget]:
    """The active version of every enabled module of TENANT, with its health."""
    import json

    from modules.models import Module

    modules = (
        Module.objects.filter(tenant_id=tenant_id, enabled=True, active_version__isnull=False)
        .select_related("active_version")
        .order_by("name")
    )
    targets = []
    for module in modules:
        version = module.active_version
        assert version is not None
        targets.append(
            ModuleTarget(
                name=module.name,
                version=version.version,
                endpoint=version.endpoint,
                intents=tuple(version.intents),
                pool=version.pool,
                health=module.health,
                metadata={
                    "image": version.image,
                    "runtime": version.runtime,
                    "health_url": version.health_url,
                    "signature_key_id": version.signature_key_id,
                    "node_selector": json.dumps(version.node_selector, sort_keys=True),
                    "flap_count": str(module.flap_count),
                },
            )
        )
    return targets
