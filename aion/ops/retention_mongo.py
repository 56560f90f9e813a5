"""MongoDB log retention: one TTL index on ``created_at`` per log collection.

(The seed runbook calls this ``control/app/db/retention_mongo.py``; in this
product it is ``aion/ops/retention_mongo.py``, run by ``manage.py
apply_mongo_retention`` and by the ``ops.purge_logs`` beat job.)

- Defaults per log type come from ``AION_ENV`` (dev: 7-14 days, prod: 30-90
  days, see ``aion.ops.logstore.DEFAULT_TTL_DAYS``); ``AION_LOG_TTL_DAYS``
  overrides them all.
- Idempotent: an index that already has the right ``expireAfterSeconds`` is
  left alone; one with another value is changed with ``collMod``. A server
  that acknowledges ``collMod`` without applying it (some MongoDB-compatible
  servers) gets the index dropped and re-created instead, and the result is
  verified either way.
"""

from __future__ import annotations

import logging
from typing import Any

from aion.ops.choices import LogType
from aion.ops.logstore import COLLECTIONS, mongo_database, ttl_days

logger = logging.getLogger("aion.ops.retention")

FIELD = "created_at"
INDEX_NAME = "created_at_ttl"


def _ttl_index(collection: Any) -> tuple[str, dict[str, Any]] | None:
    for name, info in collection.index_information().items():
        if [tuple(k) for k in info.get("key", [])] == [(FIELD, 1)]:
            return name, info
    return None


def ensure_ttl_index(database: Any, collection_name: str, seconds: int) -> str:
    """Make COLLECTION's TTL index expire after SECONDS; returns created, unchanged or updated."""
    collection = database[collection_name]
    if collection_name not in database.list_collection_names():
        database.create_collection(collection_name)
    found = _ttl_index(collection)
    if found is None:
        collection.create_index([(FIELD, 1)], name=INDEX_NAME, expireAfterSeconds=seconds)
        return "created"
    name, info = found
    if info.get("expireAfterSeconds") == seconds:
        return "unchanged"
    if "expireAfterSeconds" in info:
        try:
            database.command("collMod", collection_name, index={"name": name, "expireAfterSeconds": seconds})
        except Exception as exc:  # noqa: BLE001 - fall back to re-creating the index below
            logger.info("collMod refused, re-creating the TTL index", extra={"collection": collection_name, "error": str(exc)})
    after = _ttl_index(collection)
    if after is None or after[1].get("expireAfterSeconds") != seconds:
        # Not a TTL index yet, or collMod was not applied: re-create it.
        collection.drop_index(name)
        collection.create_index([(FIELD, 1)], name=INDEX_NAME, expireAfterSeconds=seconds)
    return "updated"


def retention_plan(*, env: str | None = None, override: int | None = None) -> dict[str, int]:
    """{collection: expireAfterSeconds} for the current settings (or the given ones)."""
    return {COLLECTIONS[t]: ttl_days(t, env=env, override=override) * 86400 for t in LogType}


def apply_retention(database: Any = None, *, env: str | None = None, override: int | None = None) -> dict[str, dict[str, Any]]:
    """Create or update every log collection's TTL index; returns what happened per collection."""
    database = database if database is not None else mongo_database()
    outcome: dict[str, dict[str, Any]] = {}
    for collection_name, seconds in retention_plan(env=env, override=override).items():
        action = ensure_ttl_index(database, collection_name, seconds)
        outcome[collection_name] = {"action": action, "expire_after_seconds": seconds, "days": seconds // 86400}
    return outcome
