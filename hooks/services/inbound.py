"""Inbound: POST /v1/hooks/approval.

``receive_approval_hook`` verifies a signed approval hook, records a security incident when
verification fails, dedupes by delivery id and calls the Kernel's approve/reject actions (its
public services) with the source's scopes enforced. The body's rules (``ApprovalHookSerializer``)
live here, so the API documents the same rules the service enforces.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ParseError

from aion import audit
from aion.api.parsers import decode_json_body
from aion.auth.principal import Principal
from aion.errors import DomainError, NotFound
from aion.incidents import record_incident, record_incident_once
from aion.models import AuditResult, IncidentKind
from aion.problems import Problem, domain_status
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


class ApprovalHookSerializer(serializers.Serializer):
    """The approval hook's body (the API's request schema is this serializer)."""

    proposal_id = serializers.CharField(max_length=64)
    decision = serializers.ChoiceField(choices=ApprovalDecision.choices)
    approver = serializers.CharField(max_length=200)
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


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


def _stored_ip(source_ip: str | None) -> str | None:
    """SOURCE_IP as the incident stores it (None when it is not an address)."""
    try:
        return str(ipaddress.ip_address(source_ip or ""))
    except ValueError:
        return None


def _verification_failed(
    reason: str, *, tenant_id: str, source_ip: str | None, headers: dict[str, str], body: bytes, status: int = 401, verified: bool = False
) -> Problem:
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
        return Problem(403, GENERIC_403, slug="hook-forbidden")
    return Problem(401, GENERIC_401, slug="hook-unverified")


def verify_inbound(
    *, headers: dict[str, str], body: bytes, source_ip: str | None, now: datetime | None = None
) -> tuple[ResolvedSource, str, str]:
    """(source, tenant, delivery id) of a correctly signed hook; raises Problem (and records incidents) otherwise."""
    now = now or timezone.now()
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
    """The validated body; a 400 problem when it is not JSON or breaks ``ApprovalHookSerializer``'s rules."""
    try:
        data = decode_json_body(body)
    except ParseError as exc:
        raise Problem(400, f"The body is not valid JSON: {exc.detail}", slug="malformed-request") from None
    serializer = ApprovalHookSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def receive_approval_hook(*, headers: dict[str, str], body: bytes, source_ip: str | None, now: datetime | None = None) -> HookResponse:
    """The whole inbound flow: verify, validate, enforce scope, dedupe, act; answers the first response to duplicates."""
    now = now or timezone.now()
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
    source: ResolvedSource, tenant_id: str, delivery_id: str, data: dict[str, Any], *, now: datetime
) -> tuple[int, dict[str, Any]]:
    """Call the Kernel action. Its refusals (domain errors: not found, conflict, stale version...) become the
    stored first response, with the status the API gives their kind (``aion.problems.domain_status``).

    ``hook_approvals_total{result}``: ``applied``, ``not_found`` (no such proposal in this tenant) or
    ``refused`` (the Kernel refused the transition).
    """
    decision = ApprovalDecision(data["decision"])
    principal = hook_principal(source)
    comment = data.get("comment") or ""
    base = {"delivery_id": delivery_id, "proposal_id": str(data["proposal_id"]), "decision": decision.value, "source": source.name}
    metadata = {"delivery_id": delivery_id, "approver": data["approver"], "source": source.name}

    def refused(refusal: DomainError, result: str) -> tuple[int, dict[str, Any]]:
        HOOK_APPROVALS.labels(decision.value, result).inc()
        status, detail = domain_status(refusal), refusal.detail
        with transaction.atomic():
            audit.record(
                f"hooks.approval.{decision.value}", "kernel_proposal", data["proposal_id"], actor=principal,
                tenant_id=tenant_id, result=AuditResult.FAILED, metadata={**metadata, "status": status, "detail": detail},
            )  # fmt: skip
        return status, {**base, "status": status, "detail": detail}

    try:
        proposal = kernel_services.get_proposal_for_tenant(tenant_id, data["proposal_id"])
    except NotFound as refusal:  # the tenant has no such proposal (another tenant's id included)
        return refused(refusal, "not_found")
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
    except DomainError as refusal:
        return refused(refusal, "refused")
    HOOK_APPROVALS.labels(decision.value, "applied").inc()
    return 200, {**base, "state": proposal.state, "approver": data["approver"]}
