"""Read-side queries other apps use (the router sees active modules as ``local`` targets).

Filled in by the Modules issue; the signature is the contract with the router.
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
    return []
