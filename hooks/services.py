"""Every state change of the hooks app, called by the API, the Console, Celery and the commands.

Inbound: ``receive_approval_hook`` verifies a signed approval hook, records a
security incident when verification fails, dedupes by delivery id and calls the
Kernel's approve/reject actions with the source's scopes enforced.

Outbound: ``create_deliveries_for_event`` (the ``event_published`` receiver)
turns outbox events into deliveries; ``deliver`` sends one attempt, pinned and
SSRF-checked, and schedules the next by the backoff schedule. Endpoint and
source management (create, rotate, redeliver, recover) live here too.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ParseError

from aion import audit
from aion.models import AuditResult
from aion.netguard import Destination, UnsafeDestination, check_url, guarded_request
from aion.outbox import publish
from aion.problems import Problem
from aion.secrets import SecretUnavailable
from aion.topics import AUDIT_ACTIVITY, WEBHOOK_DELIVERIES
from hooks import idempotency, signing
from hooks.choices import SCOPE_FOR_DECISION, ApprovalDecision, DeliveryStatus, SignatureFailure
from hooks.crypto import SecretDecryptionError, decrypt_cached, encrypt, fingerprint, new_endpoint_secret, new_hook_secret
from hooks.metrics import HOOK_APPROVALS, HOOK_SIGNATURE_FAILURES, WEBHOOK_ATTEMPTS, WEBHOOK_FAILURES, WEBHOOK_LATENCY
from hooks.models import DeliveryAttempt, HookSource, HookSourceSecret, WebhookDelivery, WebhookEndpoint
from hooks.sources import ResolvedSource, sources_for_tenant

logger = logging.getLogger("hooks")

# Events never delivered: the audit stream (every change, internal) and our own delivery outcomes (a loop).
UNDELIVERABLE_TOPICS = frozenset({AUDIT_ACTIVITY, WEBHOOK_DELIVERIES})
PING_EVENT_TYPE = "webhook.ping"
EVENT_TYPE_PATTERN = re.compile(r"^[a-z0-9_*-]+(\.[a-z0-9_*-]+)*$")
RESPONSE_EXCERPT_BYTES = 1024
MAX_RETRY_AFTER_SECONDS = 24 * 3600
GENERIC_401 = "The hook could not be verified."
GENERIC_403 = "The hook source is not allowed to do this."
DELIVERY_BATCH_SIZE = 20  # ids per hooks.send_deliveries task and at most per claim
LEASE_MARGIN_SECONDS = 60  # a lease outlives the sends it covers by this much (AION_WEBHOOK_LEASE_MARGIN_SECONDS)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# ================================================================================================
# Inbound hook sources (write side; the read side is hooks.sources)
# ================================================================================================


def _source_grace() -> timedelta:
    return timedelta(hours=getattr(settings, "AION_HOOK_SECRET_GRACE_HOURS", settings.AION_WEBHOOK_SECRET_GRACE_HOURS))


def _source_snapshot(source: HookSource) -> dict[str, Any]:
    return {
        "name": source.name,
        "tenant_id": source.tenant_id,
        "scopes": list(source.scopes),
        "service_identity": source.service_identity,
        "enabled": source.enabled,
    }


def _vault_write_source_secret(source: HookSource, secret: str, *, now: datetime, grace: timedelta) -> None:
    """Vault mode: the secret lives at secret/omertaos/hooks under ``<tenant>/<name>``, never in the DB."""
    from aion import secrets as vault
    from hooks.sources import clear_cache, read_vault_path

    document = read_vault_path(settings.AION_HOOKS_VAULT_PATH)
    key = f"{source.tenant_id}/{source.name}"
    entry = document.get(key) or {}
    if isinstance(entry, str):
        entry = json.loads(entry)
    kept = []
    for old in entry.get("secrets", []):
        old = {"secret": old, "expires_at": None} if isinstance(old, str) else dict(old)
        if old.get("expires_at") is None:
            old["expires_at"] = (now + grace).isoformat()
        kept.append(old)
    document[key] = {
        "tenant": source.tenant_id,
        "name": source.name,
        "scopes": list(source.scopes),
        "service_identity": source.service_identity,
        "secrets": [{"secret": secret, "expires_at": None}, *kept],
    }
    vault.write_kv(settings.AION_HOOKS_VAULT_PATH, document)
    clear_cache()


def create_hook_source(
    *, tenant_id: str, name: str, scopes: list[str], actor: Any, service_identity: str = "", now: datetime | None = None
) -> tuple[HookSource, str]:
    """A new source and its first secret (returned once, never shown again)."""
    from aion import secrets as vault

    now = _now(now)
    if HookSource.objects.filter(tenant_id=tenant_id, name=name).exists():
        raise Problem(409, f"A hook source named {name!r} already exists for this tenant.", slug="duplicate-source")
    secret = new_hook_secret()
    with transaction.atomic():
        source = HookSource.objects.create(
            tenant_id=tenant_id, name=name, scopes=sorted(set(scopes)), service_identity=service_identity or f"hook:{name}"
        )
        if vault.vault_enabled():
            _vault_write_source_secret(source, secret, now=now, grace=_source_grace())
        else:
            HookSourceSecret.objects.create(
                source=source, secret_encrypted=encrypt(secret), fingerprint=fingerprint(secret), created_at=now
            )
        audit.record(
            "hooks.source.created", "hook_source", source.pk, actor=actor, tenant_id=tenant_id,
            after={**_source_snapshot(source), "secret_fingerprint": fingerprint(secret)},
        )  # fmt: skip
    return source, secret


def rotate_hook_source_secret(source: HookSource, *, actor: Any, grace_hours: float | None = None, now: datetime | None = None) -> str:
    """A new active secret; the previous ones stay valid for the grace period, so senders can switch over."""
    from aion import secrets as vault

    now = _now(now)
    grace = timedelta(hours=grace_hours) if grace_hours is not None else _source_grace()
    secret = new_hook_secret()
    with transaction.atomic():
        locked = HookSource.objects.select_for_update().get(pk=source.pk)
        if vault.vault_enabled():
            _vault_write_source_secret(locked, secret, now=now, grace=grace)
        else:
            HookSourceSecret.objects.filter(source=locked, expires_at__isnull=True).update(expires_at=now + grace)
            HookSourceSecret.objects.create(
                source=locked, secret_encrypted=encrypt(secret), fingerprint=fingerprint(secret), created_at=now
            )
        audit.record(
            "hooks.source.secret_rotated", "hook_source", locked.pk, actor=actor, tenant_id=locked.tenant_id,
            after={"secret_fingerprint": fingerprint(secret), "previous_valid_until": (now + grace).isoformat()},
        )  # fmt: skip
    return secret


def set_hook_source_enabled(source: HookSource, enabled: bool, *, actor: Any) -> HookSource:
    with transaction.atomic():
        before = _source_snapshot(source)
        HookSource.objects.filter(pk=source.pk).update(enabled=enabled)
        source.refresh_from_db()
        audit.record(
            "hooks.source.enabled" if enabled else "hooks.source.disabled", "hook_source", source.pk,
            actor=actor, tenant_id=source.tenant_id, before=before, after=_source_snapshot(source),
        )  # fmt: skip
    return source


# ================================================================================================
# Inbound: POST /v1/hooks/approval
# ================================================================================================


@dataclass(frozen=True)
class HookResponse:
    status: int
    body: dict[str, Any]
    replay: bool = False


def _failure_limit() -> tuple[int, int]:
    spec = settings.AION_RATE_LIMITS.get("hook_failures", "20/60")
    count, _, window = spec.partition("/")
    return int(count), int(window or 60)


def _failure_keys(tenant_id: str, source_ip: str | None) -> tuple[str, str]:
    """(the claimed tenant at this address, the address as a whole): a forger behind a shared NAT fills only these."""
    prefix = f"{settings.AION_RATE_LIMIT_KEY_PREFIX}:hook_failures"
    ip = source_ip or "unknown"
    claimed = hashlib.sha256(tenant_id.encode()).hexdigest()[:16]  # header text never goes into a cache key raw
    return f"{prefix}:{claimed}:{ip}", f"{prefix}:*:{ip}"


def _check_failure_rate(tenant_id: str, source_ip: str | None) -> None:
    """Refuses (429) a hook that failed verification once its (tenant, IP) pair or its IP failed too often.

    Only failing hooks get here, so a correctly signed one is never refused by anyone's failures; the lockout
    only stops a forger from filling the incident store. The IP bucket is AION_RATE_LIMIT_IP_FACTOR times the
    pair's, so rotating claimed tenants does not escape it. A down counter store is a 503 (fail closed).
    """
    limit, window = _failure_limit()
    pair_key, ip_key = _failure_keys(tenant_id, source_ip)
    try:
        counts = cache.get_many([pair_key, ip_key])
    except Exception as exc:
        raise Problem(
            503, "The rate limiter is unavailable; retry later.", slug="rate-limiter-unavailable", headers={"Retry-After": "5"}
        ) from exc
    if int(counts.get(pair_key) or 0) >= limit or int(counts.get(ip_key) or 0) >= limit * settings.AION_RATE_LIMIT_IP_FACTOR:
        raise Problem(429, "Too many failed hook verifications from this address.", headers={"Retry-After": str(window)})


def _count_failure(tenant_id: str, source_ip: str | None) -> None:
    _, window = _failure_limit()
    for key in _failure_keys(tenant_id, source_ip):
        try:
            if not cache.add(key, 1, timeout=window):
                cache.incr(key)
        except Exception:  # noqa: BLE001 - counting is best effort; the check fails closed
            logger.warning("could not count a hook verification failure")


def _verification_failed(
    reason: str, *, tenant_id: str, source_ip: str | None, headers: dict[str, str], body: bytes, status: int = 401, verified: bool = False
) -> Problem:
    """Record the incident (row, audit, event), count it, and build the answer that reveals nothing.

    Past the failure limit of (tenant, IP) it raises the 429 instead, recording nothing (docs/webhooks.md, "Lockout").
    """
    import ipaddress

    from aion.incidents import record_incident
    from aion.models import IncidentKind

    _check_failure_rate(tenant_id, source_ip)
    try:
        stored_ip: str | None = str(ipaddress.ip_address(source_ip or ""))
    except ValueError:
        stored_ip = None
    # Only a verified source names the tenant; an unverified claim is filed under the platform tenant.
    record_incident(
        IncidentKind.HOOK_SIGNATURE, reason, tenant_id=tenant_id[:64] if verified else "", claimed_tenant=tenant_id,
        source_ip=stored_ip, headers=headers, body=body, details={"route": "/v1/hooks/approval", "body_bytes": len(body)},
    )  # fmt: skip
    HOOK_SIGNATURE_FAILURES.labels(reason).inc()
    _count_failure(tenant_id, source_ip)
    if status == 403:
        return Problem(403, GENERIC_403, slug="hook-forbidden")
    return Problem(401, GENERIC_401, slug="hook-unverified")


def verify_inbound(
    *, headers: dict[str, str], body: bytes, source_ip: str | None, now: datetime | None = None
) -> tuple[ResolvedSource, str, str]:
    """(source, tenant, delivery id) of a correctly signed hook; raises Problem (and records incidents) otherwise."""
    now = _now(now)
    lowered = {k.lower(): v for k, v in headers.items()}
    tenant_id = lowered.get(signing.TENANT_HEADER, "").strip()
    delivery_id = lowered.get(signing.DELIVERY_HEADER, "").strip()
    header = lowered.get(signing.SIGNATURE_HEADER, "").strip()
    if not header:
        raise _missing_signature(tenant_id, source_ip, lowered, body)
    for name, value in ((signing.TENANT_HEADER, tenant_id), (signing.DELIVERY_HEADER, delivery_id)):
        if not value:
            raise Problem(400, f"The {name} header is required.", slug="missing-header", errors={name: ["This header is required."]})
        if len(value) > 200:
            raise Problem(400, f"The {name} header is too long.", slug="bad-header", errors={name: ["At most 200 characters."]})
    failure = dict(tenant_id=tenant_id, source_ip=source_ip, headers=lowered, body=body)
    try:
        timestamp, _ = signing.parse_header(header)
    except signing.SignatureError as exc:
        raise _verification_failed(exc.reason, **failure) from None  # type: ignore[arg-type]
    tolerance = settings.AION_HOOK_TIMESTAMP_TOLERANCE_SECONDS
    if abs(now.timestamp() - timestamp) > tolerance:
        raise _verification_failed(SignatureFailure.STALE_TIMESTAMP, **failure)  # type: ignore[arg-type]
    try:
        candidates = sources_for_tenant(tenant_id, now)
    except (SecretUnavailable, SecretDecryptionError) as exc:
        logger.warning("hook sources unavailable: %s", exc)
        raise Problem(503, "Hook verification keys are unavailable; retry later.", slug="secrets-unavailable") from exc
    if not candidates:
        raise _verification_failed(SignatureFailure.UNKNOWN_TENANT, **failure)  # type: ignore[arg-type]
    for source in candidates:
        try:
            signing.verify(header, body, source.secrets, tolerance=tolerance, now=now.timestamp())
        except signing.SignatureError:
            continue
        return source, tenant_id, delivery_id
    raise _verification_failed(SignatureFailure.BAD_SIGNATURE, **failure)  # type: ignore[arg-type]


def _missing_signature(tenant_id: str, source_ip: str | None, headers: dict[str, str], body: bytes) -> Problem:
    """A missing signature is an incident too, but the answer names the header (it reveals nothing secret)."""
    _verification_failed(SignatureFailure.MISSING_SIGNATURE, tenant_id=tenant_id, source_ip=source_ip, headers=headers, body=body)
    name = signing.SIGNATURE_HEADER
    return Problem(400, f"The {name} header is required.", slug="missing-header", errors={name: ["This header is required."]})


def parse_approval_body(body: bytes) -> dict[str, Any]:
    from aion.api.parsers import decode_json_body
    from hooks.api.serializers import ApprovalHookSerializer

    try:
        data = decode_json_body(body)
    except ParseError as exc:
        raise Problem(400, f"The body is not valid JSON: {exc.detail}", slug="malformed-request") from None
    serializer = ApprovalHookSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def receive_approval_hook(*, headers: dict[str, str], body: bytes, source_ip: str | None, now: datetime | None = None) -> HookResponse:
    """The whole inbound flow: verify, validate, enforce scope, dedupe, act; answers the first response to duplicates."""
    now = _now(now)
    if len(body) > settings.AION_HOOK_MAX_BODY_BYTES:
        raise Problem(413, f"Hook bodies are at most {settings.AION_HOOK_MAX_BODY_BYTES} bytes.")
    source, tenant_id, delivery_id = verify_inbound(headers=headers, body=body, source_ip=source_ip, now=now)
    data = parse_approval_body(body)
    needed = SCOPE_FOR_DECISION[ApprovalDecision(data["decision"])]
    if needed.value not in source.scopes:
        raise _verification_failed(
            SignatureFailure.SCOPE_NOT_GRANTED, tenant_id=tenant_id, source_ip=source_ip,
            headers={k.lower(): v for k, v in headers.items()}, body=body, status=403, verified=True,
        )  # fmt: skip
    try:
        claim = idempotency.claim(tenant_id, delivery_id)
    except idempotency.IdempotencyUnavailable as exc:
        raise Problem(503, "The idempotency store is unavailable; retry later.", slug="idempotency-unavailable") from exc
    if not claim.acquired:
        if claim.in_progress:
            raise Problem(409, "This delivery is still being processed; retry shortly.", slug="delivery-in-progress",
                          headers={"Retry-After": "1"})  # fmt: skip
        _record_replay(source, tenant_id, delivery_id, source_ip, headers, body)
        return HookResponse(int(claim.status or 200), _canonical(claim.body or {}), replay=True)
    try:
        status, response = _act_on_approval(source, tenant_id, delivery_id, data, now=now)
    except BaseException:
        idempotency.release(tenant_id, delivery_id)
        raise
    try:
        idempotency.complete(tenant_id, delivery_id, status, response, source_name=source.name)
    except idempotency.IdempotencyUnavailable:
        logger.warning("could not store the response of hook delivery %s", delivery_id)
    return HookResponse(status, _canonical(response))


def _record_replay(
    source: ResolvedSource, tenant_id: str, delivery_id: str, source_ip: str | None, headers: dict[str, str], body: bytes
) -> None:
    """A correctly signed delivery id seen again (a sender retry, or a captured request resent within the timestamp
    tolerance): one ``replay`` incident per delivery id, under the verified source's tenant."""
    import ipaddress

    from aion.incidents import record_incident_once
    from aion.models import IncidentKind

    try:
        stored_ip: str | None = str(ipaddress.ip_address(source_ip or ""))
    except ValueError:
        stored_ip = None
    record_incident_once(
        f"{tenant_id}\n{delivery_id}", settings.AION_IDEMPOTENCY_TTL_SECONDS, IncidentKind.REPLAY, "duplicate_delivery",
        tenant_id=tenant_id, source_ip=stored_ip, headers={k.lower(): v for k, v in headers.items()}, body=body,
        details={"route": "/v1/hooks/approval", "delivery_id": delivery_id, "source": source.name},
    )  # fmt: skip


def _canonical(body: dict[str, Any]) -> dict[str, Any]:
    """Keys sorted, so a replay from any store (PostgreSQL jsonb reorders keys) is byte-identical."""
    return dict(json.loads(json.dumps(body, sort_keys=True, default=str)))


def hook_principal(source: ResolvedSource) -> Any:
    """The identity the Kernel sees: the source's service identity, with kernel.admin for this one call."""
    from aion.auth.principal import Principal
    from aion.rbac import Role

    return Principal(
        kind="hook",
        subject=f"hook:{source.name}",
        tenant_id=source.tenant_id,
        roles=frozenset({Role.KERNEL_ADMIN.value}),
        allowed_tenants=frozenset({source.tenant_id}),
        credential_id=source.service_identity,
    )


def _proposal_state(proposal: Any) -> str:
    for attribute in ("state", "status"):
        value = getattr(proposal, attribute, None)
        if value is not None:
            return str(value)
    return ""


def _act_on_approval(
    source: ResolvedSource, tenant_id: str, delivery_id: str, data: dict[str, Any], *, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Call the Kernel action. Kernel problems (404, 409, 412...) become the stored first response."""
    from django.core.exceptions import ObjectDoesNotExist
    from django.http import Http404

    from kernel import services as kernel_services  # lazy: the kernel app owns proposals

    decision = ApprovalDecision(data["decision"])
    principal = hook_principal(source)
    comment = data.get("comment") or ""
    base = {"delivery_id": delivery_id, "proposal_id": str(data["proposal_id"]), "decision": decision.value, "source": source.name}
    try:
        with transaction.atomic():
            proposal = kernel_services.get_proposal_for_tenant(tenant_id, data["proposal_id"])
            if proposal is None:
                raise Problem(404, "No such proposal for this tenant.")
            if decision == ApprovalDecision.APPROVE:
                result = kernel_services.approve_proposal(proposal, principal, comment=comment, now=now)
            else:
                reason = comment or f"Rejected by {data['approver']} via hook {source.name}"
                result = kernel_services.reject_proposal(proposal, principal, reason=reason, now=now)
            proposal = result if result is not None and hasattr(result, "pk") else proposal
            if hasattr(proposal, "refresh_from_db"):
                proposal.refresh_from_db()
            state = _proposal_state(proposal)
            audit.record(
                f"hooks.approval.{decision.value}", "kernel_proposal", getattr(proposal, "pk", data["proposal_id"]),
                actor=principal, tenant_id=tenant_id, after={"state": state},
                metadata={"delivery_id": delivery_id, "approver": data["approver"], "source": source.name,
                          "source_origin": source.origin},
            )  # fmt: skip
    except (ObjectDoesNotExist, Http404):
        HOOK_APPROVALS.labels(decision.value, "not_found").inc()
        return 404, {**base, "status": 404, "detail": "No such proposal for this tenant."}
    except Problem as problem:
        HOOK_APPROVALS.labels(decision.value, "refused").inc()
        with transaction.atomic():
            audit.record(
                f"hooks.approval.{decision.value}", "kernel_proposal", data["proposal_id"], actor=principal,
                tenant_id=tenant_id, result=AuditResult.FAILED,
                metadata={"delivery_id": delivery_id, "approver": data["approver"], "source": source.name,
                          "status": problem.status_code, "detail": str(problem.detail)},
            )  # fmt: skip
        return int(problem.status_code), {**base, "status": int(problem.status_code), "detail": str(problem.detail)}
    HOOK_APPROVALS.labels(decision.value, "applied").inc()
    return 200, {**base, "state": state, "approver": data["approver"]}


# ================================================================================================
# Outbound endpoints
# ================================================================================================


def _allow_private() -> bool:
    return bool(settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS)


def validate_endpoint_url(url: str) -> None:
    try:
        check_url(url, allow_private=_allow_private())
    except UnsafeDestination as exc:
        raise Problem(400, "The URL is not an allowed webhook destination.", slug="unsafe-destination",
                      errors={"url": [str(exc)]}) from None  # fmt: skip


def validate_event_types(event_types: list[str]) -> list[str]:
    cleaned = sorted({str(t).strip() for t in event_types if str(t).strip()})
    bad = [t for t in cleaned if not EVENT_TYPE_PATTERN.match(t) or len(t) > 200]
    if bad or not cleaned:
        raise Problem(400, "Event types must be dotted names, optionally with * wildcards.", slug="validation-error",
                      errors={"event_types": [f"invalid: {', '.join(bad)}" if bad else "at least one event type"]})  # fmt: skip
    return cleaned


def endpoint_snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "secret_fingerprint": endpoint.secret_fingerprint,
    }


def create_endpoint(
    *, tenant_id: str, url: str, event_types: list[str], actor: Any, description: str = "", enabled: bool = True
) -> tuple[WebhookEndpoint, str]:
    validate_endpoint_url(url)
    types = validate_event_types(event_types)
    secret = new_endpoint_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            tenant_id=tenant_id, url=url, description=description, event_types=types, enabled=enabled,
            secret_encrypted=encrypt(secret), secret_fingerprint=fingerprint(secret),
        )  # fmt: skip
        audit.record("hooks.endpoint.created", "webhook_endpoint", endpoint.pk, actor=actor, tenant_id=tenant_id,
                     after=endpoint_snapshot(endpoint))  # fmt: skip
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, changes: dict[str, Any], *, actor: Any) -> WebhookEndpoint:
    if "url" in changes:
        validate_endpoint_url(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = validate_event_types(changes["event_types"])
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = endpoint_snapshot(locked)
        for field in ("url", "description", "event_types", "enabled"):
            if field in changes:
                setattr(locked, field, changes[field])
        if changes.get("enabled") is True:
            locked.disabled_reason = ""
        elif changes.get("enabled") is False and not locked.disabled_reason:
            locked.disabled_reason = f"disabled by {getattr(actor, 'subject', actor)}"
        locked.save()
        audit.record("hooks.endpoint.updated", "webhook_endpoint", locked.pk, actor=actor, tenant_id=locked.tenant_id,
                     before=before, after=endpoint_snapshot(locked))  # fmt: skip
    return locked


def delete_endpoint(endpoint: WebhookEndpoint, *, actor: Any) -> None:
    with transaction.atomic():
        before = endpoint_snapshot(endpoint)
        pk, tenant = endpoint.pk, endpoint.tenant_id
        endpoint.delete()
        audit.record("hooks.endpoint.deleted", "webhook_endpoint", pk, actor=actor, tenant_id=tenant, before=before)


def rotate_endpoint_secret(endpoint: WebhookEndpoint, *, actor: Any, grace_hours: float | None = None, now: datetime | None = None) -> str:
    """A new whsec_ secret; during the grace period both signatures are sent (two v1= entries in each header)."""
    now = _now(now)
    hours = settings.AION_WEBHOOK_SECRET_GRACE_HOURS if grace_hours is None else grace_hours
    secret = new_endpoint_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = now + timedelta(hours=hours)
        locked.secret_encrypted = encrypt(secret)
        locked.secret_fingerprint = fingerprint(secret)
        locked.save()
        audit.record("hooks.endpoint.secret_rotated", "webhook_endpoint", locked.pk, actor=actor,
                     tenant_id=locked.tenant_id,
                     after={"secret_fingerprint": locked.secret_fingerprint,
                            "previous_valid_until": locked.previous_secret_expires_at.isoformat()})  # fmt: skip
    return secret


def endpoint_signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [decrypt_cached(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets.append(decrypt_cached(endpoint.previous_secret_encrypted))
    return secrets


# ================================================================================================
# Outbound deliveries
# ================================================================================================


def subscribed(patterns: list[str], event_type: str) -> bool:
    return any(pattern == "*" or fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns or [])


def _enabled_endpoint_patterns(tenant_id: str) -> list[tuple[int, list[str]]]:
    """(id, event_types) of the tenant's enabled endpoints, read in the caller's transaction.

    Every event of every app passes here (several per approval, seven per task), so this is one
    hand-written statement: the ORM's query compilation cost more than the query itself.
    """
    table = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, event_types FROM {table} WHERE tenant_id = %s AND enabled = %s", [tenant_id, True])  # noqa: S608 - the table name is ours
        rows = cursor.fetchall()
    return [(int(pk), json.loads(patterns) if isinstance(patterns, str | bytes) else list(patterns or [])) for pk, patterns in rows]


def create_deliveries_for_event(sender: Any = None, *, event: Any, envelope: dict[str, Any], **_: Any) -> list[int]:
    """``event_published`` receiver: one delivery per matching enabled endpoint, in the event's transaction."""
    if getattr(event, "topic", "") in UNDELIVERABLE_TOPICS:
        return []
    tenant_id = str(envelope.get("tenant_id") or "")
    event_type = str(envelope.get("type") or "")
    if not tenant_id or not event_type:
        return []
    endpoint_ids = [pk for pk, patterns in _enabled_endpoint_patterns(tenant_id) if subscribed(patterns, event_type)]
    if not endpoint_ids:
        return []
    now = timezone.now()
    ids = []
    for endpoint_id in endpoint_ids:
        delivery = WebhookDelivery.objects.create(
            tenant_id=tenant_id, endpoint_id=endpoint_id, event_id=uuid.UUID(str(envelope["event_id"])),
            event_type=event_type, payload=envelope, next_attempt_at=now,
        )  # fmt: skip
        ids.append(delivery.pk)
    transaction.on_commit(lambda: enqueue_deliveries(ids))
    return ids


def enqueue_deliveries(ids: list[int], countdown: float | None = None) -> None:
    """Hand deliveries to Celery, DELIVERY_BATCH_SIZE ids per task; if the broker is away, the beat
    sweep sends them later (nothing is lost)."""
    from hooks.tasks import send_deliveries

    for start in range(0, len(ids), DELIVERY_BATCH_SIZE):
        chunk = list(ids[start : start + DELIVERY_BATCH_SIZE])
        try:
            if countdown:
                send_deliveries.apply_async(args=[chunk], countdown=countdown)
            else:
                send_deliveries.delay(chunk)
        except Exception:  # noqa: BLE001 - the row is the source of truth; the sweep retries
            logger.warning("could not enqueue webhook deliveries %s; the retry sweep will send them", chunk)


def backoff_seconds(attempt: int, *, rng: random.Random | None = None) -> float:
    """The wait after failed attempt ATTEMPT (1-based): the schedule's entry plus up to JITTER of it."""
    schedule = settings.AION_WEBHOOK_BACKOFF_SECONDS or [60]
    base = float(schedule[min(attempt - 1, len(schedule) - 1)])
    jitter = float(getattr(settings, "AION_WEBHOOK_BACKOFF_JITTER", 0.1))
    return base + base * jitter * (rng or random).random()


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), MAX_RETRY_AFTER_SECONDS))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return float(min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS))


def delivery_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def delivery_headers(delivery: WebhookDelivery, body: bytes, now: datetime) -> dict[str, str]:
    """Signed twice over the same secrets and second: x-omerta-signature, and Standard Webhooks (webhook-*)."""
    secrets = endpoint_signing_secrets(delivery.endpoint, now)
    delivery_id = str(delivery.delivery_id)
    return {
        "Content-Type": "application/json",
        "User-Agent": "AION-Webhooks/1.0",
        signing.SIGNATURE_HEADER: signing.sign(body, secrets, timestamp=now.timestamp()),
        signing.DELIVERY_HEADER: delivery_id,
        signing.EVENT_HEADER: delivery.event_type,
        signing.TENANT_HEADER: delivery.tenant_id,
        **signing.standard_headers(delivery_id, body, secrets, timestamp=now.timestamp()),
    }


class _PinnedClients(threading.local):
    """This thread's keep-alive clients, one per (scheme, host name, port, approved address)."""

    def __init__(self) -> None:
        self.by_destination: OrderedDict[tuple[str, str, int, str], httpx.Client] = OrderedDict()


_pinned_clients = _PinnedClients()
MAX_POOLED_DESTINATIONS = 64


def pinned_client(destination: Destination) -> httpx.Client:
    """The keep-alive client for exactly DESTINATION, which netguard has just checked for this request.

    A client only ever gets URLs pinned to its one address, so its pool holds connections to that
    address alone, and one host name per client keeps a TLS session (SNI, certificate) from serving
    another host name that resolves to the same IP. When the host resolves to a new address, the
    connections to its old address are closed.
    """
    key = (destination.scheme, destination.host.lower(), destination.port, destination.address)
    clients = _pinned_clients.by_destination
    client = clients.get(key)
    if client is not None:
        clients.move_to_end(key)
        return client
    for stale in [other for other in clients if other[:3] == key[:3]]:
        clients.pop(stale).close()
    client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=30))
    clients[key] = client
    while len(clients) > MAX_POOLED_DESTINATIONS:
        clients.popitem(last=False)[1].close()
    return client


def close_pinned_clients() -> None:
    """Close this thread's pooled connections (worker shutdown, tests)."""
    clients = _pinned_clients.by_destination
    while clients:
        clients.popitem()[1].close()


@dataclass
class AttemptOutcome:
    status_code: int | None
    error: str
    excerpt: str
    latency_ms: float
    retry_after: str | None


def _send(delivery: WebhookDelivery, now: datetime, client: httpx.Client | None) -> AttemptOutcome:
    body = delivery_body(delivery)
    try:
        headers = delivery_headers(delivery, body, now)
    except SecretDecryptionError as exc:
        return AttemptOutcome(None, f"cannot sign: {exc}"[:500], "", 0.0, None)
    started = time.perf_counter()
    try:
        # Checked (resolved) again on every send; only the connection to the address approved now is used.
        response = guarded_request(
            "POST", delivery.endpoint.url, allow_private=_allow_private(),
            timeout=float(settings.AION_WEBHOOK_TIMEOUT_SECONDS), client=client,
            client_for=None if client else pinned_client, content=body, headers=headers,
        )  # fmt: skip
    except UnsafeDestination as exc:
        return AttemptOutcome(None, f"refused: {exc}"[:500], "", 0.0, None)
    except httpx.HTTPError as exc:
        latency = (time.perf_counter() - started) * 1000
        return AttemptOutcome(None, f"{type(exc).__name__}: {exc}"[:500], "", latency, None)
    latency = (time.perf_counter() - started) * 1000
    WEBHOOK_LATENCY.observe(latency / 1000)
    excerpt = response.content[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")
    error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    if 300 <= response.status_code < 400:
        error = f"HTTP {response.status_code} redirect (redirects are not followed)"
    return AttemptOutcome(response.status_code, error, excerpt, latency, response.headers.get("Retry-After"))


@dataclass
class _Attempted:
    """What one claimed delivery comes to: the attempt (if one was sent) and the row's next state."""

    delivery: WebhookDelivery
    sent_at: datetime
    status: str
    outcome: AttemptOutcome | None = None
    next_attempt_at: datetime | None = None
    error: str = ""
    disable_endpoint: bool = False
    exhausted: bool = False
    retry_in: float | None = None
    attempts: int = 0  # the round's attempts after this one
    number: int = 0  # this attempt's number in the delivery's whole history (redeliveries included)

    def __post_init__(self) -> None:
        self.attempts = self.delivery.attempts + (1 if self.outcome is not None else 0)
        self.number = int(getattr(self.delivery, "logged_attempts", 0)) + 1  # counted by _claim


def _claim(pks: list[int] | None, now: datetime, lease: datetime, limit: int) -> list[WebhookDelivery]:
    """Lease up to LIMIT due deliveries (only of PKS, when given): one conditional UPDATE ... RETURNING.

    The UPDATE re-checks "due and not leased" on the row it writes, so of two workers racing for a
    row exactly one gets it. On PostgreSQL the candidates are picked FOR UPDATE SKIP LOCKED: workers
    draining one backlog take different rows instead of queueing behind each other's locks.
    ``logged_attempts`` (the attempt number so far, across redeliveries) comes back in the same statement.
    """
    quote = connection.ops.quote_name
    table, attempts_table = quote(WebhookDelivery._meta.db_table), quote(DeliveryAttempt._meta.db_table)
    due = "status IN (%s, %s) AND next_attempt_at <= %s AND (locked_until IS NULL OR locked_until < %s)"
    due_params: list[Any] = [DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value, now, now]
    only, only_params = "", []
    if pks is not None:
        only, only_params = f" AND id IN ({', '.join(['%s'] * len(pks))})", [int(pk) for pk in pks]
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    columns = ", ".join(quote(str(field.column)) for field in WebhookDelivery._meta.concrete_fields)
    # Only quoted model identifiers are interpolated; every value is a parameter.
    sql = (
        f"UPDATE {table} SET locked_until = %s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE {due}{only} ORDER BY next_attempt_at, id LIMIT %s{skip_locked}"
        f") AND {due} RETURNING {columns}, "
        f"(SELECT COUNT(*) FROM {attempts_table} logged WHERE logged.delivery_id = {table}.id) AS logged_attempts"
    )
    params = [lease, *due_params, *only_params, limit, *due_params]
    if connection.vendor == "postgresql":
        # The lease need not wait for its WAL flush: if PostgreSQL crashes before it is durable, the
        # outcome write after the send fails too, and the delivery is resent with the same id, as
        # after any crash. Atomicity is untouched (it is all or nothing); only the fsync wait goes.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
            claimed = list(WebhookDelivery.objects.raw(sql, params))
    else:
        claimed = list(WebhookDelivery.objects.raw(sql, params))
    claimed.sort(key=lambda d: (d.next_attempt_at, d.pk))
    return claimed


def _attempt(delivery: WebhookDelivery, sent_at: datetime, client: httpx.Client | None, one_shot: bool) -> _Attempted:
    """Send one attempt of a leased delivery and decide its next state (nothing is written here)."""
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        return _Attempted(delivery, sent_at, DeliveryStatus.FAILED, error=f"endpoint disabled: {endpoint.disabled_reason}"[:500])
    outcome = _send(delivery, sent_at, client)
    attempts = delivery.attempts + 1
    code = outcome.status_code
    if code is not None and 200 <= code < 300:
        WEBHOOK_ATTEMPTS.labels("succeeded").inc()
        return _Attempted(delivery, sent_at, DeliveryStatus.SUCCEEDED, outcome)
    WEBHOOK_ATTEMPTS.labels("failed").inc()
    error = outcome.error
    if code == 410:
        return _Attempted(delivery, sent_at, DeliveryStatus.FAILED, outcome, error=error, disable_endpoint=True)
    if one_shot or attempts >= settings.AION_WEBHOOK_MAX_ATTEMPTS:
        return _Attempted(delivery, sent_at, DeliveryStatus.FAILED, outcome, error=error, exhausted=not one_shot)
    delay = parse_retry_after(outcome.retry_after, sent_at) if code in (429, 503) else None
    if delay is None:
        delay = backoff_seconds(attempts)
    return _Attempted(delivery, sent_at, DeliveryStatus.RETRYING, outcome, next_attempt_at=sent_at + timedelta(seconds=delay),
                      error=error, retry_in=delay)  # fmt: skip


def _record(results: list[_Attempted], lease: datetime, schedule_retry: bool) -> None:
    """Write a batch's outcome in one transaction: the attempt rows (one INSERT), one fenced status
    UPDATE per distinct outcome (all 2xx of a batch share one), endpoint disables, audit, events."""
    updated_at = timezone.now()
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create([_attempt_row(r) for r in results if r.outcome is not None])
        groups: dict[tuple[Any, ...], list[_Attempted]] = {}
        for r in results:
            code = r.outcome.status_code if r.outcome else None
            groups.setdefault((r.status, r.outcome is not None, code, r.next_attempt_at, r.error), []).append(r)
        for (status, attempted, code, next_attempt_at, error), members in groups.items():
            pks = [r.delivery.pk for r in members]
            written = _write_outcome(pks, lease, status, attempted, code, next_attempt_at, error[:500], updated_at)
            for r in members:
                delivery = r.delivery
                delivery.attempts, delivery.status, delivery.next_attempt_at = r.attempts, status, next_attempt_at
                delivery.locked_until, delivery.last_error, delivery.updated_at = None, error[:500], updated_at
                if attempted:
                    delivery.last_attempt_at, delivery.last_status_code = r.sent_at, code
                if written != len(members):
                    delivery.refresh_from_db()
        for r in results:
            _after_attempt(r)
    if schedule_retry:
        for r in results:
            if r.retry_in is not None:
                pk, delay = r.delivery.pk, r.retry_in
                transaction.on_commit(lambda pk=pk, delay=delay: enqueue_deliveries([pk], countdown=delay))  # type: ignore[misc]


def _write_outcome(
    pks: list[int], lease: datetime, status: str, attempted: bool, code: int | None,
    next_attempt_at: datetime | None, error: str, updated_at: datetime,
) -> int:  # fmt: skip
    """One UPDATE for every delivery of a batch with the same outcome; how many rows it changed.

    Fenced by the lease: a sender whose lease lapsed (and was taken over) changes nothing.
    ``last_attempt_at`` is each row's own newest attempt (just inserted), whichever member it is.
    Hand-written: the ORM's compile of this statement cost more than running it.
    """
    quote, adapt = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    table, attempts_table = quote(WebhookDelivery._meta.db_table), quote(DeliveryAttempt._meta.db_table)
    sets = ["status = %s", "next_attempt_at = %s", "locked_until = NULL", "last_error = %s", "updated_at = %s"]
    params: list[Any] = [status, adapt(next_attempt_at), error, adapt(updated_at)]
    if attempted:
        sets += ["attempts = attempts + 1", "last_status_code = %s",
                 f"last_attempt_at = (SELECT logged.started_at FROM {attempts_table} logged WHERE logged.delivery_id = "  # noqa: S608
                 f"{table}.id ORDER BY logged.number DESC, logged.id DESC LIMIT 1)"]  # fmt: skip
        params.append(code)
    placeholders = ", ".join(["%s"] * len(pks))
    sql = f"UPDATE {table} SET {', '.join(sets)} WHERE id IN ({placeholders}) AND locked_until = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *pks, adapt(lease)])
        return int(cursor.rowcount)


def _endpoints(ids: set[int]) -> dict[int, WebhookEndpoint]:
    """The batch's endpoints, read fresh (enabled, URL, secrets) in one hand-written SELECT."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in WebhookEndpoint._meta.concrete_fields)
    table = quote(WebhookEndpoint._meta.db_table)
    sql = f"SELECT {columns} FROM {table} WHERE id IN ({', '.join(['%s'] * len(ids))})"  # noqa: S608
    return {endpoint.pk: endpoint for endpoint in WebhookEndpoint.objects.raw(sql, sorted(ids))}


def _attempt_row(r: _Attempted) -> DeliveryAttempt:
    assert r.outcome is not None
    return DeliveryAttempt(
        delivery=r.delivery, number=r.number, started_at=r.sent_at,
        status_code=r.outcome.status_code, latency_ms=round(r.outcome.latency_ms, 2),
        succeeded=r.status == DeliveryStatus.SUCCEEDED, error=r.outcome.error,
        response_excerpt=r.outcome.excerpt, next_attempt_at=r.next_attempt_at,
    )  # fmt: skip


def _after_attempt(r: _Attempted) -> None:
    """Inside the outcome's transaction: a 410 disables the endpoint (audited); failures are published."""
    delivery, endpoint = r.delivery, r.delivery.endpoint
    if r.disable_endpoint:
        reason = f"the receiver answered 410 Gone at {r.sent_at.isoformat()}"
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason, updated_at=timezone.now())
        audit.record("hooks.endpoint.disabled", "webhook_endpoint", endpoint.pk, actor=None,
                     tenant_id=endpoint.tenant_id, after={"enabled": False, "disabled_reason": reason})  # fmt: skip
        _publish_outcome(delivery, "webhook.endpoint.disabled", reason, status=r.status, attempt=r.attempts)
    if r.status == DeliveryStatus.FAILED:
        if r.exhausted or r.disable_endpoint:
            WEBHOOK_FAILURES.labels(str(endpoint.pk), delivery.tenant_id).inc()
        _publish_outcome(delivery, "webhook.delivery.failed", r.error, status=r.status, attempt=r.attempts)


def _release(deliveries: list[WebhookDelivery], lease: datetime) -> None:
    """Give back leased deliveries this sender will not send (its lease would run short): due again at once."""
    if deliveries:
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in deliveries], locked_until=lease).update(locked_until=None)


def deliver_batch(
    pks: list[int] | None = None,
    *,
    now: datetime | None = None,
    limit: int = DELIVERY_BATCH_SIZE,
    client: httpx.Client | None = None,
    one_shot: bool = False,
    schedule_retry: bool = True,
) -> list[WebhookDelivery]:
    """Send one attempt of each due delivery among PKS (or of the LIMIT most overdue ones); the sent ones.

    Deliveries not due, or leased by another sender, are skipped: the lease (``locked_until``) makes
    each attempt exclusive. It covers every send of the batch (one timeout each) plus a margin, and a
    send only starts while one timeout plus half the margin is left; what the batch cannot send in
    time is released for another sender. A worker killed mid-send leaves a lease that lapses, after
    which the sweep (or the acks_late redelivery) sends again with the same delivery id, so the
    receiver can dedupe.
    """
    injected = now
    now = _now(now)
    if pks is not None:
        pks = list(dict.fromkeys(pks))
        limit = len(pks)
        if not pks:
            return []
    timeout = float(settings.AION_WEBHOOK_TIMEOUT_SECONDS)
    margin = float(getattr(settings, "AION_WEBHOOK_LEASE_MARGIN_SECONDS", LEASE_MARGIN_SECONDS))
    lease_seconds = timeout * limit + margin
    lease = now + timedelta(seconds=lease_seconds)
    claimed_at = time.monotonic()
    claimed = _claim(pks, now, lease, limit)
    if not claimed:
        return []
    endpoints = _endpoints({d.endpoint_id for d in claimed})
    results: list[_Attempted] = []
    for index, delivery in enumerate(claimed):
        if lease_seconds - (time.monotonic() - claimed_at) < timeout + margin / 2:
            _release(claimed[index:], lease)
            break
        delivery.endpoint = endpoints[delivery.endpoint_id]
        sent_at = injected or timezone.now()
        results.append(_attempt(delivery, sent_at, client, one_shot))
    _record(results, lease, schedule_retry)
    return [r.delivery for r in results]


def deliver(
    delivery_pk: int,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    one_shot: bool = False,
    schedule_retry: bool = True,
) -> WebhookDelivery | None:
    """Send one attempt of a due delivery; None when it is not due or another sender holds it."""
    sent = deliver_batch([delivery_pk], now=now, client=client, one_shot=one_shot, schedule_retry=schedule_retry)
    return sent[0] if sent else None


def _publish_outcome(delivery: WebhookDelivery, event_type: str, error: str, *, status: str, attempt: int | None) -> None:
    publish(
        WEBHOOK_DELIVERIES, str(delivery.endpoint_id),
        {"delivery_id": str(delivery.delivery_id), "endpoint_id": delivery.endpoint_id, "event_id": str(delivery.event_id),
         "event_type": delivery.event_type, "status": status, "attempt": attempt if attempt is not None else delivery.attempts,
         "error": error[:500]},
        event_type=event_type, tenant_id=delivery.tenant_id,
    )  # fmt: skip


def due_delivery_ids(now: datetime | None = None, limit: int = 500) -> list[int]:
    now = _now(now)
    return list(
        WebhookDelivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def redeliver(delivery: WebhookDelivery, *, actor: Any, now: datetime | None = None) -> WebhookDelivery:
    """Send again with the same delivery id (receivers dedupe), with a fresh round of attempts."""
    now = _now(now)
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        before = {"status": locked.status, "attempts": locked.attempts}
        locked.status = DeliveryStatus.PENDING
        locked.attempts = 0
        locked.next_attempt_at = now
        locked.locked_until = None
        locked.save()
        audit.record("hooks.delivery.redelivered", "webhook_delivery", locked.delivery_id, actor=actor,
                     tenant_id=locked.tenant_id, before=before, after={"status": locked.status})  # fmt: skip
        transaction.on_commit(lambda: enqueue_deliveries([locked.pk]))
    return locked


def recover_failed(
    *, tenant_id: str, since: datetime, actor: Any, endpoint: WebhookEndpoint | None = None, now: datetime | None = None
) -> list[int]:
    """Every failed delivery created since SINCE goes back to pending (conditional update: acts once)."""
    now = _now(now)
    with transaction.atomic():
        rows = WebhookDelivery.objects.filter(tenant_id=tenant_id, status=DeliveryStatus.FAILED, created_at__gte=since)
        if endpoint is not None:
            rows = rows.filter(endpoint=endpoint)
        ids = list(rows.select_for_update().values_list("pk", flat=True))
        changed = WebhookDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, locked_until=None, updated_at=timezone.now()
        )
        audit.record("hooks.delivery.recovered", "webhook_delivery", "", actor=actor, tenant_id=tenant_id,
                     after={"recovered": changed},
                     metadata={"since": since.isoformat(), "endpoint_id": endpoint.pk if endpoint else None})  # fmt: skip
        transaction.on_commit(lambda: enqueue_deliveries(ids))
    return ids


def send_test_ping(endpoint: WebhookEndpoint, *, actor: Any, now: datetime | None = None,
                   client: httpx.Client | None = None) -> WebhookDelivery:  # fmt: skip
    """A ``webhook.ping`` delivery sent right now, once (no retries, no failure metric)."""
    now = _now(now)
    event_id = uuid.uuid4()
    envelope = {
        "event_id": str(event_id), "type": PING_EVENT_TYPE, "occurred_at": now.isoformat(),
        "tenant_id": endpoint.tenant_id, "actor": getattr(actor, "subject", str(actor)), "request_id": "",
        "data": {"endpoint_id": endpoint.pk, "message": "ping from AION Control"},
    }  # fmt: skip
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            tenant_id=endpoint.tenant_id, endpoint=endpoint, event_id=event_id, event_type=PING_EVENT_TYPE,
            payload=envelope, next_attempt_at=now,
        )  # fmt: skip
        audit.record("hooks.endpoint.pinged", "webhook_endpoint", endpoint.pk, actor=actor, tenant_id=endpoint.tenant_id,
                     metadata={"delivery_id": str(delivery.delivery_id)})  # fmt: skip
    return deliver(delivery.pk, now=now, client=client, one_shot=True) or delivery


def failures_per_hour(tenant_id: str, *, now: datetime | None = None, hours: int = 24) -> list[dict[str, Any]]:
    """Failed attempts per hour over the last HOURS (oldest first), for the Console chart."""
    now = _now(now)
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    counts = [0] * hours
    times = DeliveryAttempt.objects.filter(
        delivery__tenant_id=tenant_id, succeeded=False, started_at__gte=start, started_at__lte=now
    ).values_list("started_at", flat=True)
    for started in times:
        index = int((started - start).total_seconds() // 3600)
        if 0 <= index < hours:
            counts[index] += 1
    return [{"hour": start + timedelta(hours=i), "count": counts[i]} for i in range(hours)]


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
