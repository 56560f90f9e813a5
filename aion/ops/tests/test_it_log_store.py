"""The log store: request, audit and task logs in SQL tables (default) or MongoDB (MONGO_URL), and SQL purging.

MongoDB here is nx-27017, a MongoDB wire-protocol server stored on SQLite: a
stand-in for MongoDB (see aion/testing/mongo.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aion import audit
from aion.auth.principal import system_principal
from aion.models import AuditRecord
from aion.ops.choices import LogType
from aion.ops.logstore import mongo_database, purge_sql_logs, ttl_days, write
from aion.ops.models import JobRun, RequestLog, TaskLog
from aion.testing.factories import TENANT

pytestmark = pytest.mark.django_db


def test_every_served_request_is_logged_with_its_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-abc-123")
    assert response.status_code == 200
    client.get("/readyz")
    entry = RequestLog.objects.get(route="readyz")
    assert (entry.method, entry.path, entry.status) == ("GET", "/readyz", 200)
    assert entry.duration_ms >= 0
    assert len(entry.request_id) > 0


def test_request_logging_can_be_switched_off(client, settings):
    settings.AION_REQUEST_LOG_ENABLED = False
    client.get("/readyz")
    assert not RequestLog.objects.exists()


def test_every_celery_task_outcome_is_logged():
    """A real task run through Celery's eager path fires the same task signals a worker does."""
    from aion.celery import app
    from aion.tasks import worker_heartbeat

    app.conf.task_always_eager = True
    try:
        worker_heartbeat.delay()
    finally:
        app.conf.task_always_eager = False
    entry = TaskLog.objects.get(task_name="aion.worker_heartbeat")
    assert entry.status == "SUCCESS"
    assert entry.duration_ms is not None


def test_retention_defaults_follow_aion_env_and_the_override_wins(settings):
    settings.AION_LOG_TTL_DAYS = 0
    dev = {t: ttl_days(t, env="dev") for t in LogType}
    prod = {t: ttl_days(t, env="prod") for t in LogType}
    assert all(7 <= d <= 14 for d in dev.values()) and min(dev.values()) == 7 and max(dev.values()) == 14
    assert all(30 <= d <= 90 for d in prod.values()) and min(prod.values()) == 30 and max(prod.values()) == 90
    settings.AION_LOG_TTL_DAYS = 3
    assert {ttl_days(t, env="prod") for t in LogType} == {3}


def test_purge_logs_job_deletes_only_sql_rows_past_their_retention(settings):
    from aion.ops.tasks import purge_logs

    settings.AION_ENV = "dev"
    settings.AION_LOG_TTL_DAYS = 0
    now = timezone.now()
    old_request = now - timedelta(days=ttl_days(LogType.REQUEST) + 1)
    RequestLog.objects.create(created_at=old_request, method="GET", path="/old", status=200)
    RequestLog.objects.create(created_at=now, method="GET", path="/new", status=200)
    TaskLog.objects.create(created_at=now - timedelta(days=ttl_days(LogType.TASK) + 1), task_name="old", status="SUCCESS")
    TaskLog.objects.create(created_at=now - timedelta(days=ttl_days(LogType.TASK) - 1), task_name="recent", status="SUCCESS")
    kept_audit = audit.record("test.kept", "thing", "1", actor=system_principal(TENANT), tenant_id=TENANT)
    old_audit = audit.record("test.old", "thing", "2", actor=system_principal(TENANT), tenant_id=TENANT)
    AuditRecord.objects.filter(pk=old_audit.pk).update(created_at=now - timedelta(days=ttl_days(LogType.AUDIT) + 1))
    JobRun.objects.create(job_name="old.job", status="succeeded", started_at=now - timedelta(days=60))

    result = purge_logs()
    assert result["sql"]["request"] == 1 and result["sql"]["task"] == 1 and result["sql"]["audit"] == 1
    assert list(RequestLog.objects.values_list("path", flat=True)) == ["/new"]
    assert list(TaskLog.objects.values_list("task_name", flat=True)) == ["recent"]
    assert AuditRecord.objects.filter(pk=kept_audit.pk).exists()
    assert not AuditRecord.objects.filter(pk=old_audit.pk).exists()
    assert not JobRun.objects.filter(job_name="old.job").exists()
    assert JobRun.objects.get(job_name="ops.purge_logs").status == "succeeded"
    # The override shortens every horizon.
    settings.AION_LOG_TTL_DAYS = 1
    RequestLog.objects.create(created_at=now - timedelta(days=2), method="GET", path="/two-days", status=200)
    assert purge_sql_logs(now=now)["request"] == 1


@pytest.mark.django_db(transaction=True)  # audit records are copied to MongoDB on commit
def test_with_mongo_url_request_task_and_audit_logs_go_to_mongodb(client, mongo_log_store):
    """MongoDB stand-in: nx-27017."""
    client.get("/readyz", HTTP_X_REQUEST_ID="req-mongo-1")
    write(LogType.TASK, {"task_name": "demo.task", "status": "SUCCESS", "duration_ms": 1.5})
    record = audit.record("test.mongo", "thing", "7", actor=system_principal(TENANT), tenant_id=TENANT, after={"password": "hunter2"})
    database = mongo_database()
    request = database["request_logs"].find_one({"route": "readyz"})
    assert request["status"] == 200 and request["request_id"] == "req-mongo-1"
    assert database["task_logs"].find_one({"task_name": "demo.task"})["status"] == "SUCCESS"
    mirrored = database["audit_logs"].find_one({"audit_id": record.pk})
    assert mirrored["action"] == "test.mongo"
    assert mirrored["after"]["password"] != "hunter2"  # redacted before it left SQL
    assert not RequestLog.objects.exists()  # not double-written to SQL
