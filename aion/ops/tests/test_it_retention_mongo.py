"""aion/ops/retention_mongo.py: TTL indexes on created_at, AION_ENV defaults, the override, idempotence.

MongoDB here is nx-27017, a MongoDB wire-protocol server stored on SQLite: a
stand-in for MongoDB whose TTL indexes really expire documents. It acknowledges
``collMod`` without applying it, which exercises the drop-and-re-create path.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from aion.ops.logstore import COLLECTIONS, mongo_database
from aion.ops.retention_mongo import FIELD, apply_retention, retention_plan

pytestmark = pytest.mark.django_db


def _ttls(database) -> dict[str, int]:
    out = {}
    for collection in COLLECTIONS.values():
        for info in database[collection].index_information().values():
            if [tuple(k) for k in info["key"]] == [(FIELD, 1)]:
                out[collection] = info["expireAfterSeconds"]
    return out


def test_dev_and_prod_defaults_and_the_override():
    dev = retention_plan(env="dev", override=0)
    prod = retention_plan(env="prod", override=0)
    assert set(dev) == {"request_logs", "audit_logs", "task_logs"}
    assert {s // 86400 for s in dev.values()} <= set(range(7, 15))
    assert {s // 86400 for s in prod.values()} <= set(range(30, 91))
    assert set(retention_plan(env="prod", override=5).values()) == {5 * 86400}


def test_apply_creates_indexes_is_idempotent_and_updates_a_changed_ttl(mongo_log_store, settings):
    """MongoDB stand-in: nx-27017."""
    settings.AION_ENV = "dev"
    settings.AION_LOG_TTL_DAYS = 0
    database = mongo_database()
    first = apply_retention()
    assert {o["action"] for o in first.values()} == {"created"}
    assert _ttls(database) == retention_plan()
    second = apply_retention()
    assert {o["action"] for o in second.values()} == {"unchanged"}
    settings.AION_LOG_TTL_DAYS = 2
    third = apply_retention()
    assert {o["action"] for o in third.values()} == {"updated"}
    assert set(_ttls(database).values()) == {2 * 86400}
    # Exactly one created_at index per collection after all that.
    for collection in COLLECTIONS.values():
        keyed = [i for i in database[collection].index_information().values() if [tuple(k) for k in i["key"]] == [(FIELD, 1)]]
        assert len(keyed) == 1


def test_documents_older_than_the_ttl_really_expire(mongo_log_store, settings):
    """MongoDB stand-in: nx-27017 (its TTL purge runs on access, so no sleeping for a TTL monitor)."""
    settings.AION_LOG_TTL_DAYS = 1
    apply_retention()
    collection = mongo_database()["request_logs"]
    now = timezone.now()
    collection.insert_many(
        [
            {"created_at": now - timedelta(days=2), "path": "/expired"},
            {"created_at": now - timedelta(hours=1), "path": "/recent"},
        ]
    )
    assert [d["path"] for d in collection.find({}, {"path": 1})] == ["/recent"]


def test_apply_mongo_retention_command(mongo_log_store, settings, capsys):
    """MongoDB stand-in: nx-27017."""
    settings.AION_ENV = "prod"
    settings.AION_LOG_TTL_DAYS = 0
    call_command("apply_mongo_retention")
    out = capsys.readouterr().out
    assert "audit_logs: created expireAfterSeconds=7776000 (90 days)" in out
    call_command("apply_mongo_retention")
    assert "unchanged" in capsys.readouterr().out


def test_apply_mongo_retention_needs_mongo_url_but_dry_run_does_not(settings, capsys):
    settings.MONGO_URL = None
    with pytest.raises(CommandError, match="MONGO_URL"):
        call_command("apply_mongo_retention")
    call_command("apply_mongo_retention", "--dry-run")
    assert "request_logs: expireAfterSeconds=" in capsys.readouterr().out
