"""Inbound: POST /v1/hooks/approval.

``receive_approval_hook`` verifies a signed approval hook, records a security incident when
verification fails, dedupes by delivery id and calls the Kernel's approve/reject actions (its
public services) with the source's scopes enforced. Refusals are ``aion.errors`` kinds. The two
pieces only the HTTP edge knows come from the view: the body's rules (the API's
``ApprovalHookSerializer``, so the API documents the rules it enforces) and the status a Kernel
refusal is answered with (stored as the delivery's first response, replayed byte for byte).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from aion import audit
from aion.auth.principal import Principal
from aion.errors import Conflict, DomainError, InvalidInput, NotAllowed, RateLimited, TooLarge, Unauthenticated, Unavailable
from aion.incidents import record_incident, record_incident_once
from aion.models import AuditResult, IncidentKind
from aion.rbac import Role
from aion.secrets import SecretUnavailable
from hooks import idempotency, signing
from hooks.choices import SCOPE_FOR_DECISION, ApprovalDecision, SignatureFailure
from hooks.crypto import SecretDecryptionError
from hooks.metrics import HOOK_APPROVALS, HOOK_SIGNATURE_FAILURES
from hooks.sources import ResolvedSource, sources_for_tenant
from kernel import services as kernel_services

logger = logging.getLogger("hooks")

GENERIC_401 = "The hook could not be verified."
GENERIC_403 = "The hook source is not allowed to do this."
ROUTE = "/v1/hooks/approval"


class BodyParser(Protocol):
    def __call__(self, body: bytes, /) -> dict[str, Any]: ...


class RefusalStatus(Protocol):
    def __call__(self, error: DomainError, /) -> int: ...


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
        raise Unavailable("The rate limiter is unavailable; retry later.", code="rate-limiter-unavailable", retry_after=5) from exc
    if int(counts.get(pair_key) or 0) >= limit or int(counts.get(ip_key) or 0) >= limit * settings.AION_RATE_LIMIT_IP_FACTOR:
        raise RateLimited("Too many failed hook verifications from this address.", retry_after=window)


def _count_failure(tenant_id: str, source_ip: str | None) -> None:
    _, window = _failure_limit()
    for key in _failure_keys(tenant_id, source_ip):
        try:
            if not cache.add(key, 1, timeout=window):
                cache.incr(key)
        except Exception:  # noqa: BLE001 - counting is best effort; the check fails closed
            logger.warning("could not count a hook verification failure")


def _stored_ip(source_ip: str | None) -> str | None:
    """SOURCE_IP as the incident stores it (None when it is not an address)."""
    try:
        return str(ipaddress.ip_address(source_ip or ""))
    except ValueError:
        return None


def _verification_failed(
    reason: str, *, tenant_id: str, source_ip: str | None, headers: dict[str, str], body: bytes, status: int = 401, verified: bool = False
) -> DomainError:
    """Record the incident (row, audit, event), count it, and build the answer that reveals nothing.

    Past the failure limit of (tenant, IP) it raises the 429 instead, recording nothing (docs/webhooks.md, "Lockout").
    """
    _check_failure_rate(tenant_id, source_ip)
    # Only a verified source names the tenant; an unverified claim is filed under the platform tenant.
    record_incident(
        IncidentKind.HOOK_SIGNATURE, reason, tenant_id=tenant_id[:64] if verified else "", claimed_tenant=tenant_id,
        source_ip=_stored_ip(source_ip), headers=headers, body=body, details={"route": ROUTE, "body_bytes": len(body)},
    )  # fmt: skip
    HOOK_SIGNATURE_FAILURES.labels(reason).inc()
    _count_failure(tenant_id, source_ip)
    if status == 403:
        return NotAllowed(GENERIC_403, code="hook-forbidden")
    return Unauthenticated(GENERIC_401, code="hook-unverified")


def verify_inbound(
    *, headers: dict[str, str], body: bytes, source_ip: str | None, now: datetime | None = None
) -> tuple[ResolvedSource, str, str]:
    """(source, tenant, delivery id) of a correctly signed hook; raises a domain error (and records incidents) otherwise."""
    now = now or timezone.now()
    lowered = {k.lower(): v for k, v in headers.items()}
    tenant_id = lowered.get(signing.TENANT_HEADER, "").strip()
    delivery_id = lowered.get(signing.DELIVERY_HEADER, "").strip()
    header = lowered.get(signing.SIGNATURE_HEADER, "").strip()
    if not header:
        raise _missing_signature(tenant_id, source_ip, lowered, body)
    for name, value in ((signing.TENANT_HEADER, tenant_id), (signing.DELIVERY_HEADER, delivery_id)):
        if not value:
            raise InvalidInput(f"The {name} header is required.", code="missing-header", errors={name: ["This header is required."]})
        if len(value) > 200:
            raise InvalidInput(f"The {name} header is too long.", code="bad-header", errors={name: ["At most 200 characters."]})
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
        raise Unavailable("Hook verification keys are unavailable; retry later.", code="secrets-unavailable") from exc
    if not candidates:
        raise _verification_failed(SignatureFailure.UNKNOWN_TENANT, **failure)  # type: ignore[arg-type]
    for source in candidates:
        try:
            signing.verify(header, body, source.secrets, tolerance=tolerance, now=now.timestamp())
        except signing.SignatureError:
            continue
        return source, tenant_id, delivery_id
    raise _verification_failed(SignatureFailure.BAD_SIGNATURE, **failure)  # type: ignore[arg-type]


def _missing_signature(tenant_id: str, source_ip: str | None, headers: dict[str, str], body: bytes) -> InvalidInput:
    """A missing signature is an incident too, but the answer names the header (it reveals nothing secret)."""
    _verification_failed(SignatureFailure.MISSING_SIGNATURE, tenant_id=tenant_id, source_ip=source_ip, headers=headers, body=body)
    name = signing.SIGNATURE_HEADER
    return InvalidInput(f"The {name} header is required.", code="missing-header", errors={name: ["This header is required."]})


def receive_approval_hook(
    *,
    headers: dict[str, str],
    body: bytes,
    source_ip: str | None,
    parse_body: BodyParser,
    refusal_status: RefusalStatus,
    now: datetime | None = None,
) -> HookResponse:
    """The whole inbound flow: verify, validate, enforce scope, dedupe, act; answers the first response to duplicates.

    PARSE_BODY validates the body (the API's rules); REFUSAL_STATUS is the status the API gives a domain error.
    """
    now = now or timezone.now()
    if len(body) > settings.AION_HOOK_MAX_BODY_BYTES:
        raise TooLarge(f"Hook bodies are at most {settings.AION_HOOK_MAX_BODY_BYTES} bytes.")
    source, tenant_id, delivery_id = verify_inbound(headers=headers, body=body, source_ip=source_ip, now=now)
    data = parse_body(body)
    needed = SCOPE_FOR_DECISION[ApprovalDecision(data["decision"])]
    if needed.value not in source.scopes:
        raise _verification_failed(
            SignatureFailure.SCOPE_NOT_GRANTED, tenant_id=tenant_id, source_ip=source_ip,
            headers={k.lower(): v for k, v in headers.items()}, body=body, status=403, verified=True,
        )  # fmt: skip
    try:
        claim = idempotency.claim(tenant_id, delivery_id)
    except idempotency.IdempotencyUnavailable as exc:
        raise Unavailable("The idempotency store is unavailable; retry later.", code="idempotency-unavailable") from exc
    if not claim.acquired:
        if claim.in_progress:
            raise Conflict("This delivery is still being processed; retry shortly.", code="delivery-in-progress", retry_after=1)
        _record_replay(source, tenant_id, delivery_id, source_ip, headers, body)
        return HookResponse(int(claim.status or 200), _canonical(claim.body or {}), replay=True)
    try:
        status, response = _act_on_approval(source, tenant_id, delivery_id, data, refusal_status=refusal_status, now=now)
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
    record_incident_once(
        f"{tenant_id}\n{delivery_id}", settings.AION_IDEMPOTENCY_TTL_SECONDS, IncidentKind.REPLAY, "duplicate_delivery",
        tenant_id=tenant_id, source_ip=_stored_ip(source_ip), headers={k.lower(): v for k, v in headers.items()}, body=body,
        details={"route": ROUTE, "delivery_id": delivery_id, "source": source.name},
    )  # fmt: skip


def _canonical(body: dict[str, Any]) -> dict[str, Any]:
    """Keys sorted, so a replay from any store (PostgreSQL jsonb reorders keys) is byte-identical."""
    return dict(json.loads(json.dumps(body, sort_keys=True, default=str)))


def hook_principal(source: ResolvedSource) -> Principal:
    """The identity the Kernel sees: the source's service identity, with kernel.admin for this one call."""
    return Principal(
        kind="hook",
        subject=f"hook:{source.name}",
        tenant_id=source.tenant_id,
        roles=frozenset({Role.KERNEL_ADMIN.value}),
        allowed_tenants=frozenset({source.tenant_id}),
        credential_id=source.service_identity,
    )


def _act_on_approval(
    source: ResolvedSource, tenant_id: str, delivery_id: str, data: dict[str, Any], *, refusal_status: RefusalStatus, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Call the Kernel action. Kernel refusals (not found, conflict, stale...) become the stored first response.

    ``hook_approvals_total{result}``: ``applied``, ``not_found`` (no such proposal in this tenant) or
    ``refused`` (the Kernel refused the transition).
    """
    decision = ApprovalDecision(data["decision"])
    principal = hook_principal(source)
    comment = data.get("comment") or ""
    base = {"delivery_id": delivery_id, "proposal_id": str(data["proposal_id"]), "decision": decision.value, "source": source.name}
    metadata = {"delivery_id": delivery_id, "approver": data["approver"], "source": source.name}

    def refused(error: DomainError, result: str) -> tuple[int, dict[str, Any]]:
        HOOK_APPROVALS.labels(decision.value, result).inc()
        status, detail = refusal_status(error), str(error.detail)
        with transaction.atomic():
            audit.record(
                f"hooks.approval.{decision.value}", "kernel_proposal", data["proposal_id"], actor=principal,
                tenant_id=tenant_id, result=AuditResult.FAILED, metadata={**metadata, "status": status, "detail": detail},
            )  # fmt: skip
        return status, {**base, "status": status, "detail": detail}

    try:
        proposal = kernel_services.get_proposal_for_tenant(tenant_id, data["proposal_id"])
    except DomainError as error:  # the lookup's only refusal: the tenant has no such proposal (another tenant's id included)
        return refused(error, "not_found")
    try:
        with transaction.atomic():
            if decision == ApprovalDecision.APPROVE:
                proposal = kernel_services.approve_proposal(proposal, principal, comment=comment, now=now)
            else:
                reason = comment or f"Rejected by {data['approver']} via hook {source.name}"
                proposal = kernel_services.reject_proposal(proposal, principal, reason=reason, now=now)
            audit.record(
                f"hooks.approval.{decision.value}", "kernel_proposal", proposal.pk, actor=principal, tenant_id=tenant_id,
                after={"state": proposal.state}, metadata={**metadata, "source_origin": source.origin},
            )  # fmt: skip
    except DomainError as error:
        return refused(error, "refused")
    HOOK_APPROVALS.labels(decision.value, "applied").inc()
    return 200, {**base, "state": proposal.state, "approver": data["approver"]}
