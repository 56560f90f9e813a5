"""State changes of the ops app: backups, restores, pruning and log retention.

Every other entry point (management commands, beat tasks, the Console) calls
these functions. A backup object is written under a temporary key and copied
to its final key only once it is complete, so an object under ``pg/``,
``sqlite/`` or ``mongo/`` is never partial.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import connection, transaction
from django.utils import timezone

from aion import audit
from aion.auth.principal import system_principal
from aion.ops.choices import BackupKind, BackupStatus
from aion.ops.metrics import BACKUP_FAILURES, BACKUPS
from aion.ops.models import Backup

logger = logging.getLogger("aion.ops.backups")

CHUNK = 1024 * 1024
PREFIXES = {BackupKind.POSTGRES: "pg", BackupKind.SQLITE: "sqlite", BackupKind.MONGO: "mongo"}
SUFFIXES = {"pg_dump": ".dump", "sqlite-backup-api": ".sqlite3", "mongodump": ".archive.gz", "pymongo-export": ".jsonl.gz"}


class BackupError(RuntimeError):
    """A backup or restore could not complete (the message says why)."""


def backup_storage() -> Storage:
    return storages["backups"]


def _actor(actor: Any) -> Any:
    return actor or system_principal(settings.AION_DEFAULT_TENANT, name="ops")


def timestamp(now: datetime) -> str:
    """The UTC timestamp in backup keys, e.g. 20261127T020000Z."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- storage helpers --------------------------------------------------------------------------------


class HashingReader(io.RawIOBase):
    """Wraps a stream: counts and hashes what is read through it (for streamed uploads)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        data = self.stream.read(CHUNK if size is None or size < 0 else size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _promote(storage: Storage, temp_key: str, final_key: str) -> None:
    """Move a complete object from its temporary key to its final key."""
    if isinstance(storage, FileSystemStorage):
        target = Path(storage.path(final_key))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(storage.path(temp_key), target)
        return
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:  # django-storages S3: a server-side copy, then drop the temporary object
        bucket.Object(final_key).copy_from(CopySource={"Bucket": bucket.name, "Key": temp_key})
        storage.delete(temp_key)
        return
    with storage.open(temp_key, "rb") as handle:
        storage.save(final_key, handle)
    storage.delete(temp_key)


def _upload(storage: Storage, stream: IO[bytes], final_key: str) -> tuple[str, int, str]:
    """Stream STREAM to a temporary key; returns (temporary key, size, sha256). The caller promotes it."""
    reader = HashingReader(stream)
    temp_key = storage.save(f"tmp/{final_key.replace('/', '-')}.partial", reader)  # type: ignore[arg-type]
    return temp_key, reader.size, reader.sha256.hexdigest()


# --- database dumps ---------------------------------------------------------------------------------


def tool_version(binary: str, name: str) -> str:
    """``NAME VERSION`` from ``BINARY --version`` (``mongodump 100.14.0``, ``pg_dump 15.20``); NAME alone when it does not say."""
    try:
        process = subprocess.run([binary, "--version"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return name
    match = re.search(rb"\d+\.\d+(?:\.\d+)?", process.stdout)
    return f"{name} {match.group().decode()}" if match else name


def _pg_params(database: str | None = None) -> tuple[list[str], dict[str, str]]:
    db = connection.settings_dict
    args = ["--host", str(db.get("HOST") or "127.0.0.1"), "--port", str(db.get("PORT") or 5432)]
    args += ["--username", str(db.get("USER") or "postgres")]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    env["PGDATABASE"] = database or str(db["NAME"])
    return args, env


@contextlib.contextmanager
def _pg_dump_stream() -> Iterator[tuple[IO[bytes], str, str]]:
    binary = shutil.which(settings.AION_PG_DUMP)
    if not binary:
        raise BackupError(f"{settings.AION_PG_DUMP} is not installed")
    args, env = _pg_params()
    tool = tool_version(binary, "pg_dump")
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [binary, "--format=custom", "--no-owner", "--no-privileges", *args, f"--dbname={env['PGDATABASE']}"],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
        assert process.stdout is not None
        try:
            yield process.stdout, "pg_dump", tool
        finally:
            process.stdout.close()
            code = process.wait()
        if code != 0:
            errors.seek(0)
            raise BackupError(f"pg_dump exited with {code}: {errors.read().decode(errors='replace')[-2000:]}")


def sqlite_source_path() -> str:
    """The SQLite file the embedded default uses (the backup source)."""
    return str(connection.settings_dict["NAME"])


@contextlib.contextmanager
def _sqlite_stream() -> Iterator[tuple[IO[bytes], str, str]]:
    """The SQLite online backup API into a temporary file (consistent while others write)."""
    source_path = sqlite_source_path()
    with tempfile.TemporaryDirectory() as folder:
        copy_path = os.path.join(folder, "backup.sqlite3")
        source = sqlite3.connect(source_path)
        target = sqlite3.connect(copy_path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        with open(copy_path, "rb") as handle:
            yield handle, "sqlite-backup-api", f"sqlite {sqlite3.sqlite_version}"


@contextlib.contextmanager
def _mongo_stream() -> Iterator[tuple[IO[bytes], str, str]]:
    """``mongodump --archive --gzip`` when the binary is installed (the image has it); else the pymongo export.

    The export is the embedded default's path (no MongoDB tools on the host); ``_restore_mongo`` reads it back.
    """
    binary = shutil.which(settings.AION_MONGODUMP)
    with tempfile.TemporaryFile() as buffer:
        if binary:
            tool = tool_version(binary, "mongodump")
            process = subprocess.run(
                [binary, f"--uri={settings.MONGO_URL}", f"--db={settings.MONGO_DATABASE}", "--archive", "--gzip"],
                stdout=buffer,
                stderr=subprocess.PIPE,
                check=False,
            )
            if process.returncode != 0:
                raise BackupError(f"mongodump exited with {process.returncode}: {process.stderr.decode(errors='replace')[-2000:]}")
            method = "mongodump"
        else:
            import pymongo
            from bson import json_util

            from aion.ops.logstore import COLLECTIONS, mongo_database

            tool = f"pymongo {pymongo.version}"
            database = mongo_database()
            with gzip.GzipFile(fileobj=buffer, mode="wb") as archive:
                for collection in COLLECTIONS.values():
                    for doc in database[collection].find():
                        line = json_util.dumps({"collection": collection, "doc": doc}, json_options=json_util.CANONICAL_JSON_OPTIONS)
                        archive.write(line.encode() + b"\n")
            method = "pymongo-export"
        buffer.seek(0)
        yield buffer, method, tool


def database_kind() -> str:
    return BackupKind.POSTGRES if connection.vendor == "postgresql" else BackupKind.SQLITE


def create_backup(kind: str | None = None, *, now: datetime | None = None, actor: Any = None) -> Backup:
    """Back up the database (``postgres``/``sqlite``, by the configured engine) or ``mongo``; never raises."""
    kind = kind or database_kind()
    now = now or timezone.now()
    actor = _actor(actor)
    backup = Backup.objects.create(kind=kind, created_at=now)
    started = time.perf_counter()
    storage = backup_storage()
    temp_key = ""
    try:
        if kind == BackupKind.MONGO:
            if not settings.MONGO_URL:
                raise BackupError("MONGO_URL is not set")
            stream_cm: Any = _mongo_stream()
        elif kind == BackupKind.POSTGRES:
            if connection.vendor != "postgresql":
                raise BackupError("the configured database is not PostgreSQL")
            stream_cm = _pg_dump_stream()
        elif kind == BackupKind.SQLITE:
            if connection.vendor != "sqlite":
                raise BackupError("the configured database is not SQLite")
            stream_cm = _sqlite_stream()
        else:
            raise BackupError(f"unknown backup kind {kind!r}")
        with stream_cm as (stream, method, tool):
            final_key = f"{PREFIXES[BackupKind(kind)]}/{timestamp(now)}{SUFFIXES[method]}"
            temp_key, size, digest = _upload(storage, stream, final_key)
        # Only now is the dump known complete (pg_dump exited 0): give it its real name.
        _promote(storage, temp_key, final_key)
        temp_key = ""
    except Exception as exc:  # noqa: BLE001 - recorded and counted, never a half-made object
        if temp_key:
            with contextlib.suppress(Exception):
                storage.delete(temp_key)
        BACKUP_FAILURES.labels(kind).inc()
        logger.error("backup failed", extra={"kind": kind, "error": str(exc)[:500]})
        with transaction.atomic():
            Backup.objects.filter(pk=backup.pk).update(
                status=BackupStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:4000],
                finished_at=timezone.now(),
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
            backup.refresh_from_db()
            audit.record(
                "ops.backup.failed",
                "backup",
                backup.pk,
                actor=actor,
                tenant_id=settings.AION_DEFAULT_TENANT,
                after={"kind": kind, "error": backup.error},
                result="failed",
            )
        return backup
    with transaction.atomic():
        Backup.objects.filter(pk=backup.pk).update(
            status=BackupStatus.SUCCEEDED,
            key=final_key,
            size_bytes=size,
            sha256=digest,
            method=method,
            tool=tool[:64],
            finished_at=timezone.now(),
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        backup.refresh_from_db()
        audit.record(
            "ops.backup.succeeded",
            "backup",
            backup.pk,
            actor=actor,
            tenant_id=settings.AION_DEFAULT_TENANT,
            after={"kind": kind, "key": final_key, "size_bytes": size, "sha256": digest, "tool": tool},
        )
    BACKUPS.labels(kind).inc()
    logger.info("backup written", extra={"kind": kind, "key": final_key, "size_bytes": size})
    return backup


def run_backups(*, now: datetime | None = None, actor: Any = None) -> list[Backup]:
    """What ``manage.py backup`` and the nightly job do: the database, plus MongoDB when configured."""
    results = [create_backup(now=now, actor=actor)]
    if settings.MONGO_URL:
        results.append(create_backup(BackupKind.MONGO, now=now, actor=actor))
    return results


def prune_backups(*, now: datetime | None = None, retention_days: int | None = None, actor: Any = None) -> list[Backup]:
    """Delete backup objects older than AION_BACKUP_RETENTION_DAYS; the records stay, marked pruned."""
    now = now or timezone.now()
    days = retention_days or settings.AION_BACKUP_RETENTION_DAYS
    cutoff = now - timedelta(days=days)
    storage = backup_storage()
    pruned = []
    for backup in Backup.objects.filter(status=BackupStatus.SUCCEEDED, created_at__lt=cutoff):
        with contextlib.suppress(FileNotFoundError):
            storage.delete(backup.key)
        with transaction.atomic():
            changed = Backup.objects.filter(pk=backup.pk, status=BackupStatus.SUCCEEDED).update(status=BackupStatus.PRUNED, pruned_at=now)
            if changed:
                audit.record(
                    "ops.backup.pruned",
                    "backup",
                    backup.pk,
                    actor=_actor(actor),
                    tenant_id=settings.AION_DEFAULT_TENANT,
                    before={"status": BackupStatus.SUCCEEDED, "key": backup.key},
                    after={"status": BackupStatus.PRUNED},
                    metadata={"retention_days": days},
                )
                pruned.append(backup)
    # Failed runs older than the horizon: drop any temporary object a crash may have left.
    for key in _list_keys(storage, "tmp"):
        with contextlib.suppress(Exception):
            if storage.get_modified_time(key) < cutoff:
                storage.delete(key)
    return pruned


def _list_keys(storage: Storage, prefix: str) -> list[str]:
    try:
        _, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [f"{prefix}/{name}" for name in files]


# --- restore ----------------------------------------------------------------------------------------


def find_backup(reference: str) -> Backup:
    """A Backup by id, by key, or ``latest`` (the newest succeeded database backup)."""
    queryset = Backup.objects.filter(status=BackupStatus.SUCCEEDED)
    if reference == "latest":
        found = queryset.filter(kind=database_kind()).order_by("-created_at", "-id").first()
    elif reference.isdigit():
        found = queryset.filter(pk=int(reference)).first()
    else:
        found = queryset.filter(key=reference).first()
    if found is None:
        raise BackupError(f"no completed backup matches {reference!r}")
    return found


@contextlib.contextmanager
def _downloaded(backup: Backup) -> Iterator[str]:
    """The backup object in a local temporary file, its sha256 checked against the record."""
    storage = backup_storage()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "restore.bin")
        digest = hashlib.sha256()
        with storage.open(backup.key, "rb") as source, open(path, "wb") as target:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                target.write(chunk)
        if backup.sha256 and digest.hexdigest() != backup.sha256:
            raise BackupError(f"{backup.key} does not match its recorded sha256; refusing to restore it")
        yield path


def _postgres_admin_connection() -> Any:
    import psycopg

    db = connection.settings_dict
    return psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def ensure_postgres_database(name: str) -> bool:
    """Create database NAME when missing; True when it was created."""
    from psycopg import sql

    with _postgres_admin_connection() as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def restore_backup(backup: Backup, *, target_database: str | None = None, actor: Any = None) -> dict[str, Any]:
    """Restore BACKUP into the configured database, or into TARGET_DATABASE (created when missing)."""
    actor = _actor(actor)
    started = time.perf_counter()
    outcome: dict[str, Any] = {"backup": backup.pk, "key": backup.key, "kind": backup.kind}
    with _downloaded(backup) as path:
        if backup.kind == BackupKind.POSTGRES:
            binary = shutil.which(settings.AION_PG_RESTORE)
            if not binary:
                raise BackupError(f"{settings.AION_PG_RESTORE} is not installed")
            target = target_database or str(connection.settings_dict["NAME"])
            if connection.vendor != "postgresql":
                raise BackupError("a PostgreSQL backup restores into PostgreSQL only (set DATABASE_URL)")
            outcome["created_database"] = ensure_postgres_database(target)
            args, env = _pg_params(target)
            process = subprocess.run(
                [
                    binary,
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    *args,
                    f"--dbname={target}",
                    path,
                ],
                capture_output=True,
                env=env,
                check=False,
            )
            if process.returncode != 0:
                raise BackupError(f"pg_restore exited with {process.returncode}: {process.stderr.decode(errors='replace')[-2000:]}")
        elif backup.kind == BackupKind.SQLITE:
            target = target_database or str(connection.settings_dict["NAME"])
            if target == str(connection.settings_dict["NAME"]):
                connection.close()  # our own connection must not hold the file while it is replaced
            source = sqlite3.connect(path)
            destination = sqlite3.connect(target)
            try:
                source.backup(destination)
            finally:
                destination.close()
                source.close()
        elif backup.kind == BackupKind.MONGO:
            target = target_database or settings.MONGO_DATABASE
            outcome["documents"] = _restore_mongo(backup, path, target)
        else:
            raise BackupError(f"unknown backup kind {backup.kind!r}")
    outcome["target"] = target
    outcome["duration_ms"] = int((time.perf_counter() - started) * 1000)
    with contextlib.suppress(Exception):  # the restored database may predate this audit table's rows
        audit.record("ops.backup.restored", "backup", backup.pk, actor=actor, tenant_id=settings.AION_DEFAULT_TENANT, after=outcome)
    return outcome


def _restore_mongo(backup: Backup, path: str, database_name: str) -> int:
    if backup.method == "mongodump":
        binary = shutil.which("mongorestore")
        if not binary:
            raise BackupError("mongorestore is not installed")
        process = subprocess.run(
            [
                binary,
                f"--uri={settings.MONGO_URL}",
                "--archive=" + path,
                "--gzip",
                "--drop",
                f"--nsFrom={settings.MONGO_DATABASE}.*",
                f"--nsTo={database_name}.*",
            ],
            capture_output=True,
            check=False,
        )
        if process.returncode != 0:
            raise BackupError(f"mongorestore exited with {process.returncode}: {process.stderr.decode(errors='replace')[-2000:]}")
        return -1
    from bson import json_util

    from aion.ops.logstore import mongo_database

    database = mongo_database(name=database_name)
    count = 0
    with gzip.open(path, "rb") as lines:
        for line in lines:
            item = json_util.loads(line)
            doc = item["doc"]
            database[item["collection"]].replace_one({"_id": doc["_id"]}, doc, upsert=True)
            count += 1
    return count
