"""Every state change of the modules app: register, activate, roll back, re-verify, disable, health.

The API, the Console, the management commands and the beat job all call
these functions. Each change is atomic (the module row is locked), writes an
audit record and publishes a ``modules.releases`` event in the same
transaction. A refused signature records a security incident (outside the
refused change, so it survives) and nothing is activated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from aion import audit
from aion.errors import Conflict, DomainError, NotFound, Rejected
from aion.incidents import record_incident
from aion.models import AuditResult, IncidentKind
from aion.outbox import actor_name, publish
from aion.topics import MODULE_RELEASES
from modules import manifest as manifests
from modules.choices import ActivationAction, HealthStatus, SignatureFailure

# The health poller lives in modules.health; these names stay here for callers of the public surface.
from modules.health import PollResult as PollResult
from modules.health import next_health as next_health
from modules.health import poll_health as poll_health
from modules.health import record_probe as record_probe
from modules.models import Module, ModuleActivation, ModuleVersion
from modules.signing import SignatureRejected, Verified, verify_manifest
from modules.trust import KeyRing

logger = logging.getLogger("aion.modules")

EVENT_REGISTERED = "modules.release.registered"
EVENT_ACTIVATED = "modules.release.activated"
EVENT_ROLLED_BACK = "modules.release.rolled_back"
EVENT_DISABLED = "modules.release.disabled"
INCIDENT_KIND = IncidentKind.MODULE_SIGNATURE


# --- Refusals: aion.errors kinds (aion.problems maps each to its status, once) -----------------


class ModuleActionError(DomainError):
    """Any refusal of a module action (what the API, the Console and the commands catch)."""


class ManifestRefused(ModuleActionError, Rejected):
    code = "invalid-manifest"


class SignatureRefused(ModuleActionError, Rejected):
    code = "signature-rejected"


class ManifestMismatch(SignatureRefused):
    """The signature is good but covers another manifest: a signed field was changed (reason ``manifest_mismatch``)."""

    code = "manifest-mismatch"


class VersionConflict(ModuleActionError, Conflict):
    code = "version-conflict"


class UnknownVersion(ModuleActionError, NotFound):
    code = "version-not-found"


class NoRollbackTarget(ModuleActionError, Conflict):
    code = "no-rollback-target"


# --- Helpers ------------------------------------------------------------------------------------


def snapshot(module: Module) -> dict[str, Any]:
    active = module.active_version
    return {
        "name": module.name,
        "enabled": module.enabled,
        "active_version": active.version if active else None,
        "image": active.image if active else None,
        "signature_key_id": active.signature_key_id if active else None,
        "health": module.health,
    }


def _event_payload(module: Module, version: ModuleVersion | None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"module": module.name, "enabled": module.enabled}
    if version is not None:
        payload.update(
            version=version.version,
            image=version.image,
            digest=version.image_digest,
            pool=version.pool,
            intents=list(version.intents),
            signature_key_id=version.signature_key_id,
        )
    payload.update(extra)
    return payload


def stored_drift(version: ModuleVersion) -> list[str]:
    """The columns of a stored VERSION (what the router and the host read) that disagree with its own manifest."""
    manifest = version.manifest if isinstance(version.manifest, dict) else {}
    try:
        expected = {
            "name": manifest.get("name"),
            "version": manifest.get("version"),
            "image": manifest.get("image"),
            "image_digest": manifests.parse_image(str(manifest.get("image", ""))).digest,
            "runtime": str(manifest.get("runtime", "")),
            "pool": manifest.get("pool"),
            "node_selector": manifests.node_selector(manifest),
            "intents": list(manifest.get("intents") or []),
            "endpoint": manifest.get("endpoint"),
            "health_path": manifests.health_path(manifest),
        }
    except (KeyError, TypeError, ValueError):
        return ["manifest"]
    stored = {"name": version.module.name, **version.release_fields()}
    return [name for name, value in expected.items() if stored[name] != value]


def verify_stored(version: ModuleVersion, *, keyring: KeyRing | None = None, now: datetime | None = None) -> Verified:
    """``verify_manifest`` over a stored version's manifest, and its columns must say what that signed manifest says."""
    verified = verify_manifest(version.manifest, keyring, now=now)
    drift = stored_drift(version)
    if drift:
        raise SignatureRejected(
            SignatureFailure.MANIFEST_MISMATCH, f"the stored {', '.join(drift)} differ from the signed manifest", verified.key_id
        )
    return verified


def verify_or_refuse(
    manifest: dict[str, Any],
    *,
    tenant_id: str,
    actor: Any,
    action: str,
    source_ip: str | None = None,
    keyring: KeyRing | None = None,
    now: datetime | None = None,
    stored: ModuleVersion | None = None,
) -> Verified:
    """The verifying key, or: incident + audit written, then SignatureRefused (422; ManifestMismatch for a changed signed field).

    STORED: the registered version MANIFEST comes from, whose columns are checked against it too (activate, rollback).
    """
    try:
        if stored is not None:
            return verify_stored(stored, keyring=keyring, now=now)
        return verify_manifest(manifest, keyring, now=now)
    except SignatureRejected as exc:
        name, version = str(manifest.get("name", "")), str(manifest.get("version", ""))
        with transaction.atomic():
            incident = record_incident(
                INCIDENT_KIND,
                exc.reason.value,
                tenant_id=tenant_id,
                source_ip=source_ip,
                actor=actor,
                details={
                    "module": name,
                    "version": version,
                    "image": manifest.get("image"),
                    "action": action,
                    "key_id": exc.key_id,
                    "detail": exc.detail,
                },
            )
            audit.record(
                f"module.{action}",
                "module",
                name,
                actor=actor,
                tenant_id=tenant_id,
                after={"version": version, "image": manifest.get("image")},
                result=AuditResult.DENIED,
                metadata={"reason": exc.reason.value, "detail": exc.detail, "incident_id": incident.pk},
            )
        refusal = ManifestMismatch if exc.reason == SignatureFailure.MANIFEST_MISMATCH else SignatureRefused
        raise refusal(
            f"Signature verification failed ({exc.reason.value}): {exc.detail}. Nothing was activated.",
            reason=exc.reason.value,
            incident_id=incident.pk,
        ) from exc


def _activate(
    module: Module,
    target: ModuleVersion,
    *,
    actor: Any,
    action: str,
    reason: str,
    key_id: str,
) -> ModuleActivation:
    """Make TARGET the active version of the (locked) MODULE, with history, audit and event."""
    before = snapshot(module)
    previous = module.active_version
    if previous is None or previous.pk != target.pk:
        # A different version may live on another host: its health starts over.
        module.health = HealthStatus.UNKNOWN
        module.consecutive_failures = 0
        module.health_changed_at = None
    module.active_version = target
    module.enabled = True
    module.disabled_reason = ""
    module.save()
    activation = ModuleActivation.objects.create(
        tenant_id=module.tenant_id,
        module=module,
        action=action,
        from_version=previous,
        to_version=target,
        signature_key_id=key_id,
        reason=reason[:500],
        actor=actor_name(actor),
    )
    audit.record(
        f"module.{action}",
        "module",
        module.name,
        actor=actor,
        tenant_id=module.tenant_id,
        before=before,
        after=snapshot(module),
        metadata={"reason": reason, "verified_by_key": key_id, "activation_id": activation.pk},
    )
    event = EVENT_ROLLED_BACK if action == ActivationAction.ROLLBACK else EVENT_ACTIVATED
    publish(
        MODULE_RELEASES,
        module.name,
        _event_payload(module, target, previous_version=previous.version if previous else None, reason=reason, verified_by_key=key_id),
        event_type=event,
        tenant_id=module.tenant_id,
        actor=actor,
    )
    return activation


def _lock_module(tenant_id: str, name: str) -> Module:
    """The module row, locked for this transaction (created on first registration)."""
    try:
        with transaction.atomic():
            Module.objects.get_or_create(tenant_id=tenant_id, name=name)
    except IntegrityError:
        pass  # a concurrent registration created it first
    return Module.objects.select_for_update(of=("self",)).select_related("active_version").get(tenant_id=tenant_id, name=name)


# --- Register / activate / roll back ---------------------------------------------------------


@dataclass
class Registration:
    version: ModuleVersion
    created: bool
    activated: bool


def register_module(
    tenant_id: str,
    manifest: Any,
    *,
    actor: Any,
    activate: bool = False,
    reason: str = "",
    source_ip: str | None = None,
    keyring: KeyRing | None = None,
    now: datetime | None = None,
) -> Registration:
    """Validate, verify and store MANIFEST as an immutable version; activate it when asked.

    Identical content under an existing name and version is idempotent; different content is a 409.
    """
    errors = manifests.validate(manifest)
    if errors:
        raise ManifestRefused("The manifest is invalid.", errors={f"manifest.{path}": msgs for path, msgs in errors.items()})
    verified = verify_or_refuse(
        manifest, tenant_id=tenant_id, actor=actor, action="register", source_ip=source_ip, keyring=keyring, now=now
    )
    digest = manifests.canonical_sha256(manifest)
    with transaction.atomic():
        module = _lock_module(tenant_id, manifest["name"])
        existing = module.versions.filter(version=manifest["version"]).first()
        if existing is not None:
            if existing.manifest_sha256 != digest:
                raise VersionConflict(
                    f"{module.name} {existing.version} is already registered with different content; publish a new version.",
                    registered_sha256=existing.manifest_sha256,
                )
            activated = False
            if activate and (module.active_version_id != existing.pk or not module.enabled):
                _activate(module, existing, actor=actor, action=ActivationAction.ACTIVATE, reason=reason, key_id=verified.key_id)
                activated = True
            return Registration(existing, created=False, activated=activated)
        image = manifests.parse_image(manifest["image"])
        version = ModuleVersion.objects.create(
            tenant_id=tenant_id,
            module=module,
            version=manifest["version"],
            manifest=manifest,
            manifest_sha256=digest,
            image=manifest["image"],
            image_digest=image.digest,
            runtime=str(manifest.get("runtime", "")),
            pool=manifest["pool"],
            node_selector=manifests.node_selector(manifest),
            intents=list(manifest["intents"]),
            endpoint=manifest["endpoint"],
            health_path=manifests.health_path(manifest),
            signature_key_id=verified.key_id,
            registered_by=actor_name(actor),
        )
        audit.record(
            "module.register",
            "module",
            module.name,
            actor=actor,
            tenant_id=tenant_id,
            after={"version": version.version, "image": version.image, "manifest_sha256": digest},
            metadata={"verified_by_key": verified.key_id, "key_fingerprint": verified.fingerprint},
        )
        publish(
            MODULE_RELEASES,
            module.name,
            _event_payload(module, version, manifest_sha256=digest),
            event_type=EVENT_REGISTERED,
            tenant_id=tenant_id,
            actor=actor,
        )
        if activate:
            _activate(module, version, actor=actor, action=ActivationAction.ACTIVATE, reason=reason, key_id=verified.key_id)
    return Registration(version, created=True, activated=activate)


def _locked(module: Module) -> Module:
    """MODULE's row, locked for this transaction, with its active version."""
    return Module.objects.select_for_update(of=("self",)).select_related("active_version").get(pk=module.pk)


def _version_of(module: Module, version: str) -> ModuleVersion:
    found = module.versions.filter(version=version).first()
    if found is None:
        raise UnknownVersion(f"{module.name} has no version {version!r}.")
    return found


def activate_version(
    module: Module,
    version: str,
    *,
    actor: Any,
    reason: str = "",
    source_ip: str | None = None,
    keyring: KeyRing | None = None,
    now: datetime | None = None,
) -> ModuleActivation | None:
    """Activate a registered VERSION after re-verifying its signature against today's keys (None: already active)."""
    target = _version_of(module, version)
    verified = verify_or_refuse(
        target.manifest,
        tenant_id=module.tenant_id,
        actor=actor,
        action="activate",
        source_ip=source_ip,
        keyring=keyring,
        now=now,
        stored=target,
    )
    with transaction.atomic():
        locked = _locked(module)
        if locked.active_version_id == target.pk and locked.enabled:
            return None
        return _activate(locked, target, actor=actor, action=ActivationAction.ACTIVATE, reason=reason, key_id=verified.key_id)


def previous_version(module: Module) -> ModuleVersion | None:
    """What a rollback without a target goes to: the latest earlier active version not itself rolled back from."""
    history = list(
        module.activations.filter(action__in=[ActivationAction.ACTIVATE, ActivationAction.ROLLBACK], to_version__isnull=False)
        .select_related("to_version")
        .order_by("id")
    )
    rolled_back_from = {entry.from_version_id for entry in history if entry.action == ActivationAction.ROLLBACK}
    for entry in reversed(history):
        candidate = entry.to_version
        if candidate is None or candidate.pk == module.active_version_id or candidate.pk in rolled_back_from:
            continue
        return candidate
    return None


def rollback_module(
    module: Module,
    *,
    actor: Any,
    version: str | None = None,
    reason: str = "",
    source_ip: str | None = None,
    keyring: KeyRing | None = None,
    now: datetime | None = None,
) -> ModuleActivation:
    """Go back to the previous active version (or VERSION), re-verifying its signature first.

    A version signed by a key that has since been retired cannot be rolled back to (422 + incident).
    """
    if version:
        target = _version_of(module, version)
        if target.pk == module.active_version_id and module.enabled:
            raise NoRollbackTarget(f"{module.name} {version} is already the active version.")
    else:
        found = previous_version(module)
        if found is None:
            raise NoRollbackTarget(f"{module.name} has no earlier active version to roll back to.")
        target = found
    verified = verify_or_refuse(
        target.manifest,
        tenant_id=module.tenant_id,
        actor=actor,
        action="rollback",
        source_ip=source_ip,
        keyring=keyring,
        now=now,
        stored=target,
    )
    with transaction.atomic():
        locked = _locked(module)
        if locked.active_version_id != module.active_version_id:
            raise NoRollbackTarget(f"{module.name} changed while rolling back; reload and try again.")
        return _activate(locked, target, actor=actor, action=ActivationAction.ROLLBACK, reason=reason, key_id=verified.key_id)


# --- Re-verification after a key rotation ------------------------------------------------------


@dataclass
class Reverification:
    module: Module
    version: str
    ok: bool
    key_id: str = ""  # the key that verifies it now (ok) or that signed it (retired)
    registered_key_id: str = ""
    reason: str = ""
    detail: str = ""
    disabled: bool = False


def reverify_modules(
    tenant_id: str | None = None,
    *,
    enforce: bool = False,
    actor: Any = None,
    keyring: KeyRing | None = None,
    now: datetime | None = None,
) -> list[Reverification]:
    """Re-verify every enabled module's active version (signed manifest and stored columns) against the current keys.

    ENFORCE disables failures. A manifest mismatch (tampering, not a key rotation) is a security incident even in a report.
    """
    from modules.trust import load_keyring

    ring = keyring if keyring is not None else load_keyring()
    modules = Module.objects.filter(enabled=True, active_version__isnull=False).select_related("active_version")
    if tenant_id:
        modules = modules.filter(tenant_id=tenant_id)
    results: list[Reverification] = []
    for module in modules.order_by("tenant_id", "name"):
        active = module.active_version
        assert active is not None
        try:
            verified = verify_stored(active, keyring=ring, now=now)
        except SignatureRejected as exc:
            result = Reverification(
                module,
                active.version,
                ok=False,
                key_id=exc.key_id,
                registered_key_id=active.signature_key_id,
                reason=exc.reason.value,
                detail=exc.detail,
            )
            if enforce:
                result.disabled = disable_module(
                    module,
                    actor=actor,
                    reason=f"re-verification failed: {exc.reason.value}: {exc.detail}",
                    incident_reason=exc.reason.value,
                )
            elif exc.reason == SignatureFailure.MANIFEST_MISMATCH:
                record_incident(
                    INCIDENT_KIND,
                    exc.reason.value,
                    tenant_id=module.tenant_id,
                    actor=actor or "system:modules",
                    details={"module": module.name, "version": active.version, "action": "reverify", "detail": exc.detail},
                )
        else:
            result = Reverification(module, active.version, ok=True, key_id=verified.key_id, registered_key_id=active.signature_key_id)
        results.append(result)
    return results


def disable_module(module: Module, *, actor: Any, reason: str, incident_reason: str = "") -> bool:
    """Take MODULE out of routing (its history stays); False when it was already disabled."""
    actor = actor or "system:modules"
    with transaction.atomic():
        locked = _locked(module)
        if not locked.enabled:
            return False
        before = snapshot(locked)
        locked.enabled = False
        locked.disabled_reason = reason[:300]
        locked.save(update_fields=["enabled", "disabled_reason", "updated_at"])
        ModuleActivation.objects.create(
            tenant_id=locked.tenant_id,
            module=locked,
            action=ActivationAction.DISABLE,
            from_version=locked.active_version,
            to_version=None,
            reason=reason[:500],
            actor=actor_name(actor),
        )
        if incident_reason:
            record_incident(
                INCIDENT_KIND,
                incident_reason,
                tenant_id=locked.tenant_id,
                actor=actor,
                details={"module": locked.name, "version": before["active_version"], "action": "reverify", "detail": reason},
            )
        audit.record(
            "module.disable",
            "module",
            locked.name,
            actor=actor,
            tenant_id=locked.tenant_id,
            before=before,
            after=snapshot(locked),
            metadata={"reason": reason},
        )
        publish(
            MODULE_RELEASES,
            locked.name,
            _event_payload(locked, locked.active_version, reason=reason),
            event_type=EVENT_DISABLED,
            tenant_id=locked.tenant_id,
            actor=actor,
        )
    module.enabled, module.disabled_reason = False, locked.disabled_reason
    return True
