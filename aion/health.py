"""Liveness (/healthz) and readiness (/readyz) with one check per backing service.

Each dependency reports ``ok``, ``degraded``, ``down`` or ``disabled`` (the
embedded default is in use), with its engine and latency. /readyz answers 503
when a dependency the configuration requires is down. The public answer is only
a status per dependency (``{"database": {"status": "ok"}, ...}``): engines,
hosts, paths and errors go only to a caller holding the metrics bearer token
(``AION_METRICS_TOKEN``; with none configured, allowed outside prod only,
everyone). /healthz is public and does no I/O. Apps add checks with
``register_check`` (e.g. the kernel policy loader reports a bad policy file).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

OK, DEGRADED, DOWN, DISABLED = "ok", "degraded", "down", "disabled"

Check = Callable[[], dict[str, Any]]
_extra_checks: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add a readiness entry; CHECK returns {status, ...}. Only ``down`` on a required one gives 503."""
    _extra_checks[name] = check


def _timed(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - any failure is "down", with its reason
        result = {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def tcp_probe(host: str, port: int, timeout: float = 0.5) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": OK, "engine": connection.vendor, "required": True}


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=settings.AION_REDIS_TIMEOUT_SECONDS, socket_timeout=settings.AION_REDIS_TIMEOUT_SECONDS
    )


def check_cache() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"status": DISABLED, "engine": "in-process", "detail": "in-process cache and rate limiter (single-process only)"}
    redis_client(settings.REDIS_URL).ping()
    return {"status": OK, "engine": "redis", "required": True}


def check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        redis_client(url).ping()
        return {"status": OK, "engine": "redis", "required": True, **_worker_info()}
    if url.startswith("filesystem"):
        folder = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        import os
        from pathlib import Path

        Path(folder).mkdir(parents=True, exist_ok=True)  # made at first use (aion/broker.py), as settings make no folder
        if not os.access(folder, os.W_OK):
            return {"status": DOWN, "engine": "filesystem", "required": True, "error": f"{folder} is not writable"}
        return {"status": DISABLED, "engine": "filesystem", "detail": "serverless broker under AION_VAR_DIR", **_worker_info()}
    parsed = urlparse(url)
    if parsed.hostname:
        tcp_probe(parsed.hostname, parsed.port or 5672)
    return {"status": OK, "engine": parsed.scheme, "required": True}


def _worker_info() -> dict[str, Any]:
    from django.utils import timezone

    from aion.models import WorkerHeartbeat

    newest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    return {"last_worker_heartbeat_age_seconds": round((timezone.now() - newest).total_seconds(), 1) if newest else None}


def check_event_bus() -> dict[str, Any]:
    from aion.outbox import backlog

    count, age = backlog()
    info: dict[str, Any] = {"backlog": count, "oldest_unpublished_age_seconds": round(age, 1) if age else None}
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        return {"status": DISABLED, "engine": "outbox", "detail": "events stay in the database outbox", **info}
    host, _, port = settings.KAFKA_BOOTSTRAP_SERVERS[0].rpartition(":")
    try:
        tcp_probe(host or "localhost", int(port or 9092))
    except OSError as exc:
        # The outbox buffers while Kafka is away, so this is degraded, not down.
        return {"status": DEGRADED, "engine": "kafka", "error": str(exc), **info}
    stale = age is not None and age > settings.AION_OUTBOX_STALE_SECONDS
    return {"status": DEGRADED if stale else OK, "engine": "kafka", **info}


def check_storage() -> dict[str, Any]:
    if not settings.AION_S3_ENDPOINT_URL:
        import os

        path = settings.MEDIA_ROOT
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            return {"status": DOWN, "engine": "filesystem", "required": True, "error": f"{path} is not writable"}
        return {"status": DISABLED, "engine": "filesystem", "detail": f"local files under {path}"}
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=settings.AION_S3_ENDPOINT_URL,
        aws_access_key_id=settings.AION_S3_ACCESS_KEY_ID,
        aws_secret_access_key=settings.AION_S3_SECRET_ACCESS_KEY,
        region_name=settings.AION_S3_REGION,
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
    )
    client.head_bucket(Bucket=settings.AION_MEMORY_BUCKET)
    return {"status": OK, "engine": "s3", "required": True}


def check_vector_store() -> dict[str, Any]:
    if not settings.QDRANT_URL:
        return {"status": DISABLED, "engine": "qdrant-local", "detail": f"embedded Qdrant under {settings.QDRANT_PATH}"}
    parsed = urlparse(settings.QDRANT_URL)
    tcp_probe(parsed.hostname or "localhost", parsed.port or 6333)
    return {"status": OK, "engine": "qdrant", "required": True}


def check_log_store() -> dict[str, Any]:
    if not settings.MONGO_URL:
        return {"status": DISABLED, "engine": "sql", "detail": "log tables in the main database"}
    import pymongo

    client: Any = pymongo.MongoClient(settings.MONGO_URL, serverSelectionTimeoutMS=1000)
    try:
        client.admin.command("ping")
    finally:
        client.close()
    return {"status": OK, "engine": "mongodb", "required": True}


CORE_CHECKS: dict[str, Check] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "event_bus": check_event_bus,
    "storage": check_storage,
    "vector_store": check_vector_store,
    "log_store": check_log_store,
}

# A failing check is "down" only for engines the configuration selected.
_REQUIRED_WHEN_CONFIGURED = {
    "cache": lambda: bool(settings.REDIS_URL),
    "broker": lambda: not settings.CELERY_BROKER_URL.startswith(("filesystem", "memory")),
    "storage": lambda: True,
    "vector_store": lambda: bool(settings.QDRANT_URL),
    "log_store": lambda: bool(settings.MONGO_URL),
    "database": lambda: True,
    "event_bus": lambda: False,
}


def readiness() -> tuple[int, dict[str, Any]]:
    dependencies: dict[str, dict[str, Any]] = {}
    database_down = False
    for name, check in {**CORE_CHECKS, **_extra_checks}.items():
        if database_down:
            # Most other checks read the database too; each would wait the pool timeout only to fail the same way.
            dependencies[name] = {"status": "unknown", "detail": "not checked: the database is down"}
            continue
        result = _timed(check)
        database_down = name == "database" and result["status"] == DOWN
        if result["status"] == DOWN:
            result["required"] = result.get("required", _REQUIRED_WHEN_CONFIGURED.get(name, lambda: False)())
        dependencies[name] = result
    failing = [name for name, result in dependencies.items() if result["status"] == DOWN and result.get("required")]
    degraded = any(result["status"] in (DOWN, DEGRADED) for result in dependencies.values())
    status = "down" if failing else ("degraded" if degraded else "ok")
    return (503 if failing else 200), {"status": status, "service": "aion-control", "dependencies": dependencies}


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "service": "aion-control"})


def public_view(body: dict[str, Any]) -> dict[str, Any]:
    """BODY without the details (engines, host:port, paths, errors, backlogs): a status per dependency."""
    dependencies = {name: {"status": result["status"]} for name, result in body["dependencies"].items()}
    return {"status": body["status"], "service": body["service"], "dependencies": dependencies}


def readyz(request: HttpRequest) -> JsonResponse:
    from aion.metrics import has_metrics_token

    code, body = readiness()
    return JsonResponse(body if has_metrics_token(request) else public_view(body), status=code)


healthz.required_role = "public"  # type: ignore[attr-defined]
readyz.required_role = "public"  # type: ignore[attr-defined]  # details only with the metrics token
