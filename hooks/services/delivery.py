"""The delivery engine: outbox events become deliveries; each attempt is leased, signed, pinned, SSRF-checked and sent.

``create_deliveries_for_event`` (the ``event_published`` receiver) writes one delivery per matching
endpoint in the event's transaction; ``deliver_batch`` sends one attempt of each due delivery of a batch
and schedules the next by the backoff schedule (docs/webhooks.md, "The delivery engine"). Deliveries
reach Celery by task name (``hooks.send_deliveries``): the task module calls this one, not the reverse.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from celery import signature
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from aion import audit
from aion.netguard import Destination, UnsafeDestination, guarded_request
from aion.outbox import publish
from aion.topics import AUDIT_ACTIVITY, WEBHOOK_DELIVERIES
from hooks import signing
from hooks.choices import DeliveryStatus
from hooks.crypto import SecretDecryptionError, decrypt_cached
from hooks.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_FAILURES, WEBHOOK_LATENCY
from hooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("hooks")

# Events never delivered: the audit stream (every change, internal) and our own delivery outcomes (a loop).
UNDELIVERABLE_TOPICS = frozenset({AUDIT_ACTIVITY, WEBHOOK_DELIVERIES})
SEND_DELIVERIES_TASK = "hooks.send_deliveries"  # hooks.tasks.send_deliveries
RESPONSE_EXCERPT_BYTES = 1024
MAX_RETRY_AFTER_SECONDS = 24 * 3600
DELIVERY_BATCH_SIZE = 20  # ids per hooks.send_deliveries task and at most per claim


def _allow_private() -> bool:
    return bool(settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS)


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
    for start in range(0, len(ids), DELIVERY_BATCH_SIZE):
        chunk = list(ids[start : start + DELIVERY_BATCH_SIZE])
        try:
            # By name: the registered task's apply_async (eager in tests), else a plain send_task.
            signature(SEND_DELIVERIES_TASK, args=(chunk,)).apply_async(countdown=countdown or None)
        except Exception:  # noqa: BLE001 - the row is the source of truth; the sweep retries
            logger.warning("could not enqueue webhook deliveries %s; the retry sweep will send them", chunk)


def backoff_seconds(attempt: int, *, rng: random.Random | None = None) -> float:
    """The wait after failed attempt ATTEMPT (1-based): the schedule's entry plus up to JITTER of it."""
    schedule = settings.AION_WEBHOOK_BACKOFF_SECONDS or [60]
    base = float(schedule[min(attempt - 1, len(schedule) - 1)])
    jitter = float(settings.AION_WEBHOOK_BACKOFF_JITTER)
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


def endpoint_signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [decrypt_cached(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets.append(decrypt_cached(endpoint.previous_secret_encrypted))
    return secrets


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
    now = now or timezone.now()
    if pks is not None:
        pks = list(dict.fromkeys(pks))
        limit = len(pks)
        if not pks:
            return []
    timeout = float(settings.AION_WEBHOOK_TIMEOUT_SECONDS)
    margin = float(settings.AION_WEBHOOK_LEASE_MARGIN_SECONDS)
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
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def redeliver(delivery: WebhookDelivery, *, actor: Any, now: datetime | None = None) -> WebhookDelivery:
    """Send again with the same delivery id (receivers dedupe), with a fresh round of attempts."""
    now = now or timezone.now()
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
    now = now or timezone.now()
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


def failures_per_hour(tenant_id: str, *, now: datetime | None = None, hours: int = 24) -> list[dict[str, Any]]:
    """Failed attempts per hour over the last HOURS (oldest first), for the Console chart."""
    now = now or timezone.now()
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
