"""The one settings module: every value comes from the environment via ``aion.env``.

Each backing service has an embedded default and one variable that selects its
production engine (see docs/architecture.md). A bad value fails start-up loudly.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from aion import env
from aion.clientip import parse_networks as parse_trusted_networks

BASE_DIR = Path(__file__).resolve().parent.parent
# Importing settings writes nothing: the run command makes VAR_DIR, and each user makes its own folder or file at first use.
VAR_DIR = Path(env.string("AION_VAR_DIR", str(BASE_DIR / "var"))).resolve()

AION_ENV = env.choice("AION_ENV", "dev", ("dev", "prod"))
DEBUG = env.boolean("AION_DEBUG", False)

SECRET_KEY = env.string("AION_SECRET_KEY") or env.string("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if AION_ENV == "prod":
        raise ImproperlyConfigured("AION_SECRET_KEY must be set when AION_ENV=prod")
    # Dev only: a per-install key kept under the var folder, never committed (generated at first use).
    SECRET_KEY = env.generated_secret(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env.csv("AION_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env.csv("AION_CSRF_TRUSTED_ORIGINS", "")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.boolean("AION_BEHIND_TLS_PROXY") else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = AION_ENV == "prod"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "django_tables2",
    "django_htmx",
    "drf_spectacular",
    "channels",
    "django_celery_beat",
    "aion",
    "aion.ops",
    "console",
    "kernel",
    "memory",
    "modules",
    "router",
    "hooks",
]

MIDDLEWARE = [
    "aion.middleware.RequestIdMiddleware",
    "aion.middleware.MetricsMiddleware",
    "aion.middleware.ErrorBodyMiddleware",
    "aion.middleware.HealthProbeMiddleware",
    "aion.middleware.BodySizeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "aion.middleware.LazyMessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx for the Console's partial updates
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Gateway: RateLimit-* headers, then Idempotency-Key (its process_view runs after the body-size check).
    "aion.ratelimit.RateLimitHeadersMiddleware",
    "aion.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "aion.urls"
WSGI_APPLICATION = "aion.wsgi.application"
ASGI_APPLICATION = "aion.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.console",
            ]
        },
    }
]

# --- Database: SQLite under AION_VAR_DIR, or PostgreSQL via DATABASE_URL ---------------------
DATABASE_URL = env.url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
    except Exception as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    # PostgreSQL: a bounded psycopg pool per process (docs/architecture.md, "Database connections").
    # Under ASGI every request runs on its own thread; persistent per-thread connections would grow with
    # client concurrency, a pool caps them at AION_DB_POOL_SIZE per process whatever the load.
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        AION_DB_POOL_SIZE = env.integer("AION_DB_POOL_SIZE", 8, minimum=1, maximum=1000)
        AION_DB_POOL_TIMEOUT_SECONDS = env.decimal_number("AION_DB_POOL_TIMEOUT_SECONDS", 5.0, minimum=0.1)
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 0,  # opened lazily: no connection is held by a process that never queries
            "max_size": AION_DB_POOL_SIZE,
            "timeout": AION_DB_POOL_TIMEOUT_SECONDS,  # then the request gets a 503 problem with Retry-After
            "max_idle": 60.0,
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.string("AION_SQLITE_PATH", str(VAR_DIR / "aion.sqlite3")),
            # WAL + a busy timeout let web, worker and beat share the file.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
# Threads serving HTTP in one web process (aion/asgi.py). Keep AION_DB_POOL_SIZE at least this large,
# so a request never waits for a connection another thread of the same process holds.
AION_WEB_THREADS = env.integer("AION_WEB_THREADS", 8, minimum=1, maximum=512)
# SQLite tests use a file (not :memory:) so worker subprocesses in tests see the same data.
_test_db_default = None if DATABASE_URL else str(VAR_DIR / "test-aion.sqlite3")
DATABASES["default"]["TEST"] = {"NAME": env.string("AION_TEST_DATABASE_NAME") or _test_db_default}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASE_IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

# --- Cache, rate limits, idempotency: in-process, or Redis via REDIS_URL ----------------------
REDIS_URL = env.url("REDIS_URL", schemes=("redis", "rediss", "unix"))
# Idempotency keys live on Redis database 3 by default, as the runbook says.
AION_IDEMPOTENCY_REDIS_URL = env.url("AION_IDEMPOTENCY_REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL and not AION_IDEMPOTENCY_REDIS_URL:
    _base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") >= 3 else REDIS_URL.rstrip("/")
    AION_IDEMPOTENCY_REDIS_URL = f"{_base}/3"
AION_IDEMPOTENCY_TTL_SECONDS = env.integer("AION_IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=60)
AION_REDIS_TIMEOUT_SECONDS = env.decimal_number("AION_REDIS_TIMEOUT_SECONDS", 0.5, minimum=0.01)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": AION_REDIS_TIMEOUT_SECONDS, "socket_timeout": AION_REDIS_TIMEOUT_SECONDS},
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    # Single-process only: each process has its own cache (documented in docs/architecture.md).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "aion"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Rate limits per route class: "<count>/<seconds>", each from AION_RATE_LIMIT_<CLASS>.
AION_RATE_LIMIT_DEFAULTS = {
    "default": "600/60",
    "write": "120/60",
    "ingest": "1200/60",
    "hooks": "300/60",
    "hook_failures": "20/60",
    "auth_failures": "60/60",
}
AION_RATE_LIMITS = env.rate_limits(AION_RATE_LIMIT_DEFAULTS)

# --- Celery: a serverless filesystem broker under var/, or Redis via CELERY_BROKER_URL --------
CELERY_BROKER_URL = env.url("CELERY_BROKER_URL", schemes=("redis", "rediss", "amqp", "filesystem", "sqla+sqlite", "memory"))
if CELERY_BROKER_URL in ("", "filesystem://"):  # named explicitly, it gets the same folders (it had none)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "aion.broker:Transport"  # kombu's, making its folders when a channel first opens
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.boolean("AION_CELERY_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep our JSON log lines in worker and beat
CELERY_BEAT_SCHEDULER = "aion.ops.schedules:DatabaseScheduler"  # installs missing defaults, keeps admin edits
CELERY_TIMEZONE = "UTC"
# The full beat schedule, here and nowhere else; beat installs the missing entries into the database on start.
CELERY_BEAT_SCHEDULE = {
    "outbox-relay": {"task": "aion.relay_outbox", "schedule": 5.0},
    "worker-heartbeat": {"task": "aion.worker_heartbeat", "schedule": 30.0},
    "webhook-retry-sweep": {"task": "hooks.retry_due_deliveries", "schedule": 15.0},
    "proposal-expiry": {"task": "kernel.expire_proposals", "schedule": 60.0},
    "memory-retention": {"task": "memory.apply_retention", "schedule": 3600.0},
    "memory-abort-stale-uploads": {"task": "memory.abort_stale_uploads", "schedule": 3600.0},
    "module-health": {"task": "modules.poll_health", "schedule": 30.0},
    "nightly-backup": {"task": "ops.nightly_backup", "schedule": 86400.0},
    "log-retention": {"task": "ops.purge_logs", "schedule": 3600.0},
    "clickhouse-export": {"task": "ops.export_clickhouse", "schedule": 60.0},
    "router-requeue-stale-tasks": {"task": "router.requeue_stale_tasks", "schedule": 60.0},
}

# --- Storage: local filesystem, or S3/MinIO via AION_S3_ENDPOINT_URL ---------------------------
AION_S3_ENDPOINT_URL = env.url("AION_S3_ENDPOINT_URL", schemes=("http", "https"))
AION_S3_ACCESS_KEY_ID = env.string("AION_S3_ACCESS_KEY_ID")
AION_S3_SECRET_ACCESS_KEY = env.string("AION_S3_SECRET_ACCESS_KEY")
AION_S3_REGION = env.string("AION_S3_REGION", "us-east-1")
AION_MEMORY_BUCKET = env.string("AION_MEMORY_BUCKET", "memory")
AION_BACKUP_BUCKET = env.string("AION_BACKUP_BUCKET", "aion-backups")
MEDIA_ROOT = VAR_DIR / "media"
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"  # made by collectstatic (the run command, the image build)
STATICFILES_DIRS = [BASE_DIR / "static"]


def _bucket_storage(bucket: str) -> dict:
    if AION_S3_ENDPOINT_URL:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": AION_S3_ENDPOINT_URL,
                "access_key": AION_S3_ACCESS_KEY_ID,
                "secret_key": AION_S3_SECRET_ACCESS_KEY,
                "region_name": AION_S3_REGION,
                "file_overwrite": True,
                "addressing_style": "path",
            },
        }
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / bucket)},
    }


STORAGES = {
    "default": _bucket_storage(AION_MEMORY_BUCKET),
    "memory": _bucket_storage(AION_MEMORY_BUCKET),
    "backups": _bucket_storage(AION_BACKUP_BUCKET),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Event bus: the DB outbox, relayed to Kafka when KAFKA_BOOTSTRAP_SERVERS is set ------------
KAFKA_BOOTSTRAP_SERVERS = env.csv("KAFKA_BOOTSTRAP_SERVERS")
AION_KAFKA_CLIENT_ID = env.string("AION_KAFKA_CLIENT_ID", "aion-control")
AION_OUTBOX_BATCH_SIZE = env.integer("AION_OUTBOX_BATCH_SIZE", 500, minimum=1)
AION_OUTBOX_STALE_SECONDS = env.integer("AION_OUTBOX_STALE_SECONDS", 300, minimum=1)
# manage.py runtime_consumer (group control-plane): records per poll, and how long a poll may be late before the
# group hands its partitions to another member (a batch is one INSERT, so a minute is ample).
AION_RUNTIME_CONSUMER_BATCH = env.integer("AION_RUNTIME_CONSUMER_BATCH", 500, minimum=1)
AION_RUNTIME_CONSUMER_MAX_POLL_SECONDS = env.decimal_number("AION_RUNTIME_CONSUMER_MAX_POLL_SECONDS", 60.0, minimum=1.0)

# --- Vector store: Qdrant local mode under var/qdrant, or a server via QDRANT_URL --------------
QDRANT_URL = env.url("QDRANT_URL", schemes=("http", "https"))
QDRANT_API_KEY = env.string("QDRANT_API_KEY")
QDRANT_PATH = VAR_DIR / "qdrant"

# --- Log store: SQL tables, or MongoDB via MONGO_URL --------------------------------------------
MONGO_URL = env.url("MONGO_URL", schemes=("mongodb", "mongodb+srv"))
MONGO_DATABASE = env.string("MONGO_DATABASE", "aion")
AION_LOG_TTL_DAYS = env.integer("AION_LOG_TTL_DAYS", 0, minimum=0)  # 0 = the AION_ENV default
AION_CLICKHOUSE_TTL_DAYS = env.integer("AION_CLICKHOUSE_TTL_DAYS", 90, minimum=1)
AION_BACKUP_RETENTION_DAYS = env.integer("AION_BACKUP_RETENTION_DAYS", 14 if AION_ENV == "dev" else 30, minimum=1)
CLICKHOUSE_URL = env.url("CLICKHOUSE_URL", schemes=("http", "https", "clickhouse"))
# Operations (aion/ops): log capture, backup tools, the ClickHouse exporter.
AION_REQUEST_LOG_ENABLED = env.boolean("AION_REQUEST_LOG_ENABLED", True)
AION_TASK_LOG_ENABLED = env.boolean("AION_TASK_LOG_ENABLED", True)
# Request and task log entries are buffered and written in batches off the request path, every this many
# seconds (0 = one synchronous write per entry, as the in-process test suite uses); flushed on clean exit.
AION_LOG_FLUSH_SECONDS = env.decimal_number("AION_LOG_FLUSH_SECONDS", 1.0, minimum=0.0)
AION_LOG_BUFFER_MAX_ENTRIES = env.integer("AION_LOG_BUFFER_MAX_ENTRIES", 50_000, minimum=100)
AION_WORKER_METRICS_PORT = env.integer("AION_WORKER_METRICS_PORT", 0, minimum=0, maximum=65535)  # worker/beat /metrics
AION_PG_DUMP = env.string("AION_PG_DUMP", "pg_dump")
AION_PG_RESTORE = env.string("AION_PG_RESTORE", "pg_restore")
AION_MONGODUMP = env.string("AION_MONGODUMP", "mongodump")
AION_CLICKHOUSE_DATABASE = env.string("AION_CLICKHOUSE_DATABASE", "aion")
AION_CLICKHOUSE_EXPORT_BATCH = env.integer("AION_CLICKHOUSE_EXPORT_BATCH", 5000, minimum=1)

# --- Secrets: Vault KV v2 when VAULT_ADDR is set ------------------------------------------------
VAULT_ADDR = env.url("VAULT_ADDR", schemes=("http", "https"))
VAULT_TOKEN = env.string("VAULT_TOKEN")
VAULT_ROLE_ID = env.string("VAULT_ROLE_ID")
VAULT_SECRET_ID = env.string("VAULT_SECRET_ID")
VAULT_MOUNT = env.string("VAULT_MOUNT", "secret")
AION_HOOKS_VAULT_PATH = env.string("AION_HOOKS_VAULT_PATH", "omertaos/hooks")
AION_ENCRYPTION_KEY = env.string("AION_ENCRYPTION_KEY")  # Fernet key for secrets at rest; derived from SECRET_KEY if unset

# --- Gateway: identity ------------------------------------------------------------------------
AION_GATEWAY_API_KEYS = env.string("AION_GATEWAY_API_KEYS")
AION_DEFAULT_TENANT = env.string("AION_DEFAULT_TENANT", "default")
# Security incidents of unauthenticated or unknown-tenant requests are filed here, never under the tenant a
# request only claimed; principals allowed to act for it are platform admins (docs/security.md).
AION_PLATFORM_TENANT = env.string("AION_PLATFORM_TENANT", "platform").strip()
if not AION_PLATFORM_TENANT or len(AION_PLATFORM_TENANT) > 64:
    raise ImproperlyConfigured(f"AION_PLATFORM_TENANT must be 1-64 characters, got {AION_PLATFORM_TENANT!r}")
AION_JWT_ISSUER = env.string("AION_JWT_ISSUER", "aion-control")
AION_JWT_AUDIENCE = env.string("AION_JWT_AUDIENCE", "aion-api")
AION_JWKS_PATH = env.string("AION_JWKS_PATH", str(VAR_DIR / "jwks.json"))
AION_JWT_LEEWAY_SECONDS = env.integer("AION_JWT_LEEWAY_SECONDS", 30, minimum=0)
AION_API_KEY_ROTATION_GRACE_HOURS = env.integer("AION_API_KEY_ROTATION_GRACE_HOURS", 24, minimum=0)
# How long a process trusts a database API key it has looked up (revoking clears the revoking process at once).
AION_API_KEY_CACHE_SECONDS = env.decimal_number("AION_API_KEY_CACHE_SECONDS", 5.0, minimum=0.0)
# Extra JWKS (JSON) published/accepted beside the AION_JWKS_PATH file, e.g. keys of an external issuer.
AION_JWT_JWKS = env.string("AION_JWT_JWKS")
# Private signing keys (PEM, one per kid) written by `jwt_generate_key`; Vault path used instead when VAULT_ADDR is set.
AION_JWT_PRIVATE_KEY_DIR = env.string("AION_JWT_PRIVATE_KEY_DIR", str(VAR_DIR / "jwt-keys"))
AION_JWT_VAULT_PATH = env.string("AION_JWT_VAULT_PATH", "omertaos/jwt")
AION_GATEWAY_VAULT_PATH = env.string("AION_GATEWAY_VAULT_PATH", "omertaos/gateway")
AION_JWT_DEFAULT_TTL_SECONDS = env.integer("AION_JWT_DEFAULT_TTL_SECONDS", 3600, minimum=60)
# --- Gateway: rate limits and idempotency (limits per route class are AION_RATE_LIMITS above) ---
# An IP's bucket is this many times a credential's (many clients can share one NAT address).
AION_RATE_LIMIT_IP_FACTOR = env.integer("AION_RATE_LIMIT_IP_FACTOR", 10, minimum=1)
# Peers (comma-separated CIDRs) whose forwarded-for header is believed; empty = none (aion/clientip.py, docs/security.md).
AION_TRUSTED_PROXIES = env.string("AION_TRUSTED_PROXIES").strip()
parse_trusted_networks(AION_TRUSTED_PROXIES)  # a bad entry fails start-up, naming the variable
if env.raw("AION_TRUSTED_PROXY_HOPS") not in (None, "", "0"):
    raise ImproperlyConfigured("AION_TRUSTED_PROXY_HOPS is gone: list the proxies' addresses in AION_TRUSTED_PROXIES (CIDRs)")
AION_RATE_LIMIT_KEY_PREFIX = env.string("AION_RATE_LIMIT_KEY_PREFIX", "aion:rl")
AION_IDEMPOTENCY_KEY_PREFIX = env.string("AION_IDEMPOTENCY_KEY_PREFIX", "aion:idem")
AION_IDEMPOTENCY_LOCK_SECONDS = env.integer("AION_IDEMPOTENCY_LOCK_SECONDS", 120, minimum=1)  # in-flight marker lifetime
# At most one access.denied audit record per credential, route, method and reason in this many seconds (0: every one).
AION_AUDIT_DENIED_INTERVAL_SECONDS = env.integer("AION_AUDIT_DENIED_INTERVAL_SECONDS", 60, minimum=0)
# --- Gateway: the outbox relay ---
AION_OUTBOX_RELAY_LOCK_SECONDS = env.integer("AION_OUTBOX_RELAY_LOCK_SECONDS", 300, minimum=10)
AION_KAFKA_TIMEOUT_SECONDS = env.decimal_number("AION_KAFKA_TIMEOUT_SECONDS", 10.0, minimum=0.5)
AION_OUTBOX_MAX_BACKOFF_SECONDS = env.integer("AION_OUTBOX_MAX_BACKOFF_SECONDS", 300, minimum=1)
# The largest event the producer sends (kafka-python max_request_size); keep it <= the topics' max.message.bytes.
AION_KAFKA_MAX_REQUEST_BYTES = env.integer("AION_KAFKA_MAX_REQUEST_BYTES", 1048576, minimum=1024)

# --- Hooks --------------------------------------------------------------------------------------
AION_HOOK_SOURCES = env.string("AION_HOOK_SOURCES")
AION_HOOK_TIMESTAMP_TOLERANCE_SECONDS = env.integer("AION_HOOK_TIMESTAMP_TOLERANCE_SECONDS", 300, minimum=1)
AION_HOOK_MAX_BODY_BYTES = env.integer("AION_HOOK_MAX_BODY_BYTES", 1024 * 1024, minimum=1)
AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.boolean("AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
AION_WEBHOOK_TIMEOUT_SECONDS = env.decimal_number("AION_WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
AION_WEBHOOK_MAX_ATTEMPTS = env.integer("AION_WEBHOOK_MAX_ATTEMPTS", 5, minimum=1)
AION_WEBHOOK_BACKOFF_SECONDS = env.integer_list("AION_WEBHOOK_BACKOFF_SECONDS", "10,60,300,1800", minimum=0)
AION_WEBHOOK_SECRET_GRACE_HOURS = env.integer("AION_WEBHOOK_SECRET_GRACE_HOURS", 24, minimum=0)
AION_WEBHOOK_BACKOFF_JITTER = env.decimal_number("AION_WEBHOOK_BACKOFF_JITTER", 0.1, minimum=0.0)  # up to +10 % of each wait
# A delivery lease outlives the sends it covers by this much (docs/webhooks.md, "The delivery engine").
AION_WEBHOOK_LEASE_MARGIN_SECONDS = env.decimal_number("AION_WEBHOOK_LEASE_MARGIN_SECONDS", 60.0, minimum=0.0)
AION_HOOK_SECRET_GRACE_HOURS = env.integer("AION_HOOK_SECRET_GRACE_HOURS", AION_WEBHOOK_SECRET_GRACE_HOURS, minimum=0)
AION_HOOKS_IDEMPOTENCY_PREFIX = env.string("AION_HOOKS_IDEMPOTENCY_PREFIX", "aion:hooks:inbound:")
# The previous AION_ENCRYPTION_KEY while hook secrets are re-encrypted (docs/runbook.md, Key Rotation).
AION_ENCRYPTION_KEY_PREVIOUS = env.string("AION_ENCRYPTION_KEY_PREVIOUS")

# --- Kernel -------------------------------------------------------------------------------------
AION_KERNEL_POLICY_PATH = env.string("AION_KERNEL_POLICY_PATH", str(BASE_DIR / "policies" / "kernel" / "policy.yaml"))
# A host with no node-agent report for this long is ``stale`` (docs/kernel.md, "Hosts and rollout"); agents heartbeat
# well inside it (the agent's default interval is a fraction of this).
AION_KERNEL_HOST_STALE_SECONDS = env.integer("AION_KERNEL_HOST_STALE_SECONDS", 300, minimum=10)

# --- Memory -------------------------------------------------------------------------------------
# JSON bodies nested deeper than this many arrays/objects are a 400 (aion/api/parsers.py).
AION_JSON_MAX_DEPTH = env.integer("AION_JSON_MAX_DEPTH", 64, minimum=2, maximum=512)
AION_MEMORY_MAX_CHUNK_BYTES = env.integer("AION_MEMORY_MAX_CHUNK_BYTES", 8 * 1024 * 1024, minimum=1)
AION_MEMORY_MAX_UPLOAD_BYTES = env.integer("AION_MEMORY_MAX_UPLOAD_BYTES", 1024 * 1024 * 1024, minimum=1)
# Under ASGI Django spools every request body to a temp file past FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB by default),
# on the event loop; an ingest chunk (up to 4/3 of the chunk limit as base64) stays in memory instead (docs/memory.md).
FILE_UPLOAD_MAX_MEMORY_SIZE = AION_MEMORY_MAX_CHUNK_BYTES * 4 // 3 + 64 * 1024
AION_MEMORY_UPLOAD_TTL_HOURS = env.integer("AION_MEMORY_UPLOAD_TTL_HOURS", 72, minimum=1)
AION_EMBEDDINGS_URL = env.url("AION_EMBEDDINGS_URL", schemes=("http", "https"))
AION_EMBEDDINGS_API_KEY = env.string("AION_EMBEDDINGS_API_KEY")
# The embeddings endpoint is operator-configured (usually in-cluster), so private addresses are allowed by default.
AION_EMBEDDINGS_ALLOW_PRIVATE_NETWORKS = env.boolean("AION_EMBEDDINGS_ALLOW_PRIVATE_NETWORKS", True)
AION_EMBEDDINGS_TIMEOUT_SECONDS = env.decimal_number("AION_EMBEDDINGS_TIMEOUT_SECONDS", 30.0, minimum=0.1)
# Qdrant local mode locks its folder per client; other processes wait this long for their turn.
AION_QDRANT_LOCAL_LOCK_WAIT_SECONDS = env.decimal_number("AION_QDRANT_LOCAL_LOCK_WAIT_SECONDS", 30.0, minimum=0.0)
# Uploads stuck in assembling/processing this long (a lost task) may be reprocessed.
AION_MEMORY_STUCK_AFTER_MINUTES = env.integer("AION_MEMORY_STUCK_AFTER_MINUTES", 15, minimum=1)
AION_MEMORY_SEARCH_MAX_TOP_K = env.integer("AION_MEMORY_SEARCH_MAX_TOP_K", 100, minimum=1)

# --- Router -------------------------------------------------------------------------------------
AION_ROUTER_POLICY_PATH = env.string("AION_ROUTER_POLICY_PATH", str(BASE_DIR / "policies" / "router.yml"))
# Module hosts live on private cluster networks, so the router may call private addresses
# (cloud metadata stays blocked by aion.netguard). Set false to restrict targets to public hosts.
AION_ROUTER_ALLOW_PRIVATE_NETWORKS = env.boolean("AION_ROUTER_ALLOW_PRIVATE_NETWORKS", True)
AION_ROUTER_STATS_WINDOW = env.integer("AION_ROUTER_STATS_WINDOW", 200, minimum=1)
AION_ROUTER_STATS_WINDOW_SECONDS = env.integer("AION_ROUTER_STATS_WINDOW_SECONDS", 900, minimum=1)
AION_ROUTER_STATS_CACHE_SECONDS = env.decimal_number("AION_ROUTER_STATS_CACHE_SECONDS", 1.0, minimum=0)
# Dry runs and submit-time checks compare the active policy revision with the database at most this
# often (a reload elsewhere takes effect within it); tests reset the database between cases, so 0 there.
AION_ROUTER_POLICY_CHECK_SECONDS = env.decimal_number("AION_ROUTER_POLICY_CHECK_SECONDS", 1.0, minimum=0)
AION_ROUTER_SSE_MAX_SECONDS = env.decimal_number("AION_ROUTER_SSE_MAX_SECONDS", 300.0, minimum=0.1)
AION_ROUTER_SSE_POLL_SECONDS = env.decimal_number("AION_ROUTER_SSE_POLL_SECONDS", 0.5, minimum=0.01)
AION_ROUTER_STALE_PENDING_SECONDS = env.integer("AION_ROUTER_STALE_PENDING_SECONDS", 120, minimum=1)
# A claimed task's lease = the sum of its call timeouts + this margin; past it, another worker may take it over.
AION_ROUTER_LEASE_MARGIN_SECONDS = env.decimal_number("AION_ROUTER_LEASE_MARGIN_SECONDS", 30.0, minimum=0)
# Empty = Celery's default queue; name one to give task execution its own workers (worker -Q <name>).
AION_ROUTER_TASK_QUEUE = env.string("AION_ROUTER_TASK_QUEUE", "")
# The embedded filesystem broker is polled: with kombu's 1 s default, a worker whose prefetch is full
# (acks_late) sleeps a second after each batch, capping task execution at its concurrency per second.
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = env.decimal_number("AION_BROKER_POLL_SECONDS", 0.05, minimum=0.001)

# --- Modules ------------------------------------------------------------------------------------
AION_COSIGN_PUBLIC_KEYS = env.string("AION_COSIGN_PUBLIC_KEYS")
AION_ORAS_REGISTRY = env.string("AION_ORAS_REGISTRY")
AION_MODULES_CATALOG_PATH = env.string("AION_MODULES_CATALOG_PATH", str(BASE_DIR / "modules.yml"))
# Trusted Cosign keys may also live in Vault KV v2 (one entry per key id); see docs/modules.md.
AION_COSIGN_VAULT_PATH = env.string("AION_COSIGN_VAULT_PATH", "omertaos/cosign")
AION_ORAS_INSECURE = env.boolean("AION_ORAS_INSECURE", False)  # plain-HTTP registry (local stand-ins)
# Module hosts live in-cluster, on private addresses; the SSRF guard still refuses metadata IPs.
AION_MODULES_ALLOW_PRIVATE_NETWORKS = env.boolean("AION_MODULES_ALLOW_PRIVATE_NETWORKS", True)
AION_MODULES_HEALTH_TIMEOUT_SECONDS = env.decimal_number("AION_MODULES_HEALTH_TIMEOUT_SECONDS", 3.0, minimum=0.05)
AION_MODULES_HEALTH_SLOW_SECONDS = env.decimal_number("AION_MODULES_HEALTH_SLOW_SECONDS", 1.0, minimum=0.01)
AION_MODULES_HEALTH_WINDOW = env.integer("AION_MODULES_HEALTH_WINDOW", 5, minimum=1, maximum=100)
AION_MODULES_DOWN_AFTER_FAILURES = env.integer("AION_MODULES_DOWN_AFTER_FAILURES", 3, minimum=1)
AION_MODULES_HEALTH_HISTORY = env.integer("AION_MODULES_HEALTH_HISTORY", 50, minimum=5)

# --- Console ------------------------------------------------------------------------------------
AION_ADMIN_PASSWORD = env.string("AION_ADMIN_PASSWORD")
LOGIN_URL = "/console/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/console/login/"

# --- Requests -----------------------------------------------------------------------------------
AION_MAX_BODY_BYTES = env.integer("AION_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
# Django's own guard sits above the largest per-view limit (memory chunks, base64-inflated).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(AION_MAX_BODY_BYTES, AION_MEMORY_MAX_CHUNK_BYTES * 4 // 3 + 64 * 1024)

# --- DRF ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "aion.auth.authentication.ApiKeyAuthentication",
        "aion.auth.authentication.JWTAuthentication",
        "aion.auth.authentication.ConsoleSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["aion.rbac.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["aion.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "aion.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "aion.problems.exception_handler",
    # Fail-closed GCRA limiter on every view (route class from the view's rate_limit_class).
    "DEFAULT_THROTTLE_CLASSES": ["aion.ratelimit.GatewayThrottle"],
    "DEFAULT_SCHEMA_CLASS": "aion.api.schema.AionAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AION Control API",
    "DESCRIPTION": "Control plane: kernel proposals, memory, router, modules and hooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "aion.api.schema.add_platform_routes"],
    "ENUM_NAME_OVERRIDES": {
        "ProposalStateEnum": "kernel.choices.ProposalState",
        "UploadStateEnum": "memory.choices.UploadState",
        "IncidentStateEnum": "aion.models.IncidentState",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
INSTALLED_APPS.append("drf_spectacular_sidecar")

# --- i18n / time --------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Logging: JSON lines carrying the request id ------------------------------------------------
LOG_LEVEL = env.choice("AION_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "aion.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "aion.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "kafka": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --- Metrics ------------------------------------------------------------------------------------
# Web, worker and beat share counters through prometheus_client's multiprocess mode when set.
PROMETHEUS_MULTIPROC_DIR = env.string("PROMETHEUS_MULTIPROC_DIR")
# Bearer token for /metrics and the details of /readyz (aion/metrics.py); unset = open, allowed outside prod only.
AION_METRICS_TOKEN = env.string("AION_METRICS_TOKEN").strip()
CSRF_FAILURE_VIEW = "aion.problems.csrf_failure"

# --- Production invariants: AION_ENV=prod refuses to start on an unsafe configuration (docs/security.md) ------
if AION_ENV == "prod":
    env.require_production(
        debug=DEBUG,
        database_engine=DATABASES["default"]["ENGINE"],
        redis_url=REDIS_URL,
        broker_url=CELERY_BROKER_URL,
        secret_key=SECRET_KEY,
        webhook_private_networks=AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS,
        cosign_keys=AION_COSIGN_PUBLIC_KEYS,
        vault_addr=VAULT_ADDR,
        metrics_token=AION_METRICS_TOKEN,
    )
