"""Typed, fail-loud readers for environment variables.

Every setting comes through here so a bad value stops start-up with an
``ImproperlyConfigured`` that names the variable. ``*_FILE`` variants let
secrets come from mounted files (Kubernetes/Vault agent) instead of the env.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def raw(name: str) -> str | None:
    """The value of NAME, or the contents of the file named by NAME_FILE."""
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return None


def string(name: str, default: str = "") -> str:
    value = raw(name)
    return default if value is None else value


def boolean(name: str, default: bool = False) -> bool:
    value = raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def integer(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {number}")
    return number


def decimal_number(name: str, default: float, *, minimum: float | None = None) -> float:
    value = raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {number}")
    return number


def csv(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in string(name, default).split(",") if item.strip()]


def integer_list(name: str, default: str, *, minimum: int | None = None) -> list[int]:
    """A comma-separated list of integers; a bad item fails naming NAME and the item."""
    numbers = []
    for item in csv(name, default):
        try:
            number = int(item)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name} must be a comma-separated list of integers, got {item!r} in {string(name, default)!r}"
            ) from exc
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name} items must be >= {minimum}, got {number}")
        numbers.append(number)
    return numbers


def rate_limits(defaults: dict[str, str]) -> dict[str, str]:
    """Per route class, AION_RATE_LIMIT_<CLASS> ("<count>/<seconds>", both positive) or the class's default."""
    limits = {}
    for route_class, default in defaults.items():
        name = f"AION_RATE_LIMIT_{route_class.upper()}"
        spec = string(name, default).strip()
        count, _, period = spec.partition("/")
        if not (count.isdigit() and period.isdigit() and int(count) > 0 and int(period) > 0):
            raise ImproperlyConfigured(f"{name} must look like <count>/<seconds>, got {spec!r}")
        limits[route_class] = spec
    return limits


def choice(name: str, default: str, options: tuple[str, ...]) -> str:
    value = string(name, default).strip()
    if value not in options:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value


def url(name: str, default: str = "", *, schemes: tuple[str, ...] = ()) -> str:
    value = string(name, default).strip()
    if value and schemes and value.split("://", 1)[0] not in schemes:
        raise ImproperlyConfigured(f"{name} must use one of the schemes {', '.join(schemes)}; got {value!r}")
    return value


def generated_secret(path: Path) -> str:
    """A per-install secret kept in PATH (dev only), made at first use: reading settings writes nothing to disk.

    Until something reads it, the value is lazy; then the file is read, or created once (atomically, so web, worker
    and beat starting together on a fresh var folder agree on one key)."""
    if path.exists():
        return path.read_text().strip()
    return cast(str, lazy(functools.cache(lambda: _read_or_create_secret(path)), str)())


def _read_or_create_secret(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)  # fails if another process made it first; then its key is the one
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


# Secret keys that are public (Django's template default, the repo's compose and build-time values, placeholders).
KNOWN_DEFAULT_SECRET_PREFIXES = ("django-insecure", "changeme", "change-me", "change_me", "local-compose-only", "build-only", "secret")
PRODUCTION_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")


def production_violation(
    *,
    debug: bool,
    database_engine: str,
    redis_url: str,
    broker_url: str,
    secret_key: str,
    webhook_private_networks: bool,
    cosign_keys: str,
    vault_addr: str,
    metrics_token: str,
) -> str | None:
    """The first reason (one line, naming the variable) this configuration must not run with AION_ENV=prod, or None."""
    lowered_key = secret_key.strip().lower()
    checks = (
        (debug, "AION_DEBUG must be off"),
        (database_engine.endswith("sqlite3"), "DATABASE_URL must name a PostgreSQL database (SQLite is single-host only)"),
        (not redis_url, "REDIS_URL must be set (the in-process cache and rate limiter count per process)"),
        (
            broker_url.split("://", 1)[0] not in PRODUCTION_BROKER_SCHEMES,
            f"CELERY_BROKER_URL must be a redis:// or amqp:// broker, not {broker_url.split('://', 1)[0]}://",
        ),
        (len(secret_key) < 50, f"AION_SECRET_KEY must be at least 50 characters (it has {len(secret_key)})"),
        (
            lowered_key.startswith(KNOWN_DEFAULT_SECRET_PREFIXES) or len(set(secret_key)) < 5,
            "AION_SECRET_KEY is a known default or placeholder; generate a random one",
        ),
        (webhook_private_networks, "AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS must be off (outbound webhooks to private addresses)"),
        (
            not cosign_keys.strip() and not vault_addr,
            "AION_COSIGN_PUBLIC_KEYS (or VAULT_ADDR with AION_COSIGN_VAULT_PATH) must supply the trusted Cosign keys",
        ),
        (not metrics_token, "AION_METRICS_TOKEN (or AION_METRICS_TOKEN_FILE) must be set: /metrics is not public"),
    )
    return next((message for failed, message in checks if failed), None)


def require_production(**values: Any) -> None:
    """Raises ImproperlyConfigured with one line naming the variable when VALUES break a production invariant."""
    problem = production_violation(**values)
    if problem:
        raise ImproperlyConfigured(f"AION_ENV=prod: {problem}")
