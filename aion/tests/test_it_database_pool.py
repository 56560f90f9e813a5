"""The database connection pool and what a caller sees when the database cannot serve: a 503 problem, never a 500.

- PostgreSQL runs through Django's psycopg pool, sized by AION_DB_POOL_SIZE (docs/architecture.md);
- an unreachable database answers 503 ``database-unavailable`` with Retry-After, on API and non-API routes;
- an exhausted pool (every connection busy past AION_DB_POOL_TIMEOUT_SECONDS) answers the same 503.
Each runs against a real served process (the Dockerfile's command); "down" is a closed port or a missing folder.
"""

from __future__ import annotations

import threading

import httpx
import pytest
from django.db import connection

from aion.testing.processes import serve, stop
from aion.testing.services import free_port

ENV_KEY = "pool-test-key-0123456789abcdef"


def test_postgres_settings_use_a_bounded_pool_and_no_persistent_connections(settings_from_env):
    loaded = settings_from_env(DATABASE_URL="postgres://u@db:5432/aion", AION_DB_POOL_SIZE="12", AION_DB_POOL_TIMEOUT_SECONDS="2.5")
    database = loaded["DATABASES"]["default"]
    assert database["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert database["OPTIONS"]["pool"]["max_size"] == 12
    assert database["OPTIONS"]["pool"]["timeout"] == 2.5


def test_the_default_pool_is_eight_connections_per_process(settings_from_env):
    assert settings_from_env(DATABASE_URL="postgres://u@db:5432/aion")["DATABASES"]["default"]["OPTIONS"]["pool"]["max_size"] == 8


@pytest.mark.parametrize("bad", ["0", "-1", "lots"])
def test_a_bad_pool_size_fails_loudly(settings_from_env, bad):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="AION_DB_POOL_SIZE"):
        settings_from_env(DATABASE_URL="postgres://u@db:5432/aion", AION_DB_POOL_SIZE=bad)


def _assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:aion:problem:database-unavailable"
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_is_a_503_problem_with_retry_after(tmp_path):
    if connection.vendor == "postgresql":
        down = {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/aion"}  # nothing listens there
    else:
        down = {"AION_SQLITE_PATH": str(tmp_path / "no-such-folder" / "aion.sqlite3")}
    instance = serve(tmp_path, AION_GATEWAY_API_KEYS=f"{ENV_KEY}:kernel.proposer|auditor:acme", **down)
    try:
        with httpx.Client(timeout=30) as client:
            _assert_database_unavailable(client.get(instance.url("/v1/kernel/proposals"), headers={"x-api-key": ENV_KEY}))
            change = {"key": "vm.swappiness", "from": None, "to": 10}
            body = {"scope": "sysctl", "changes": [change], "justification": "x", "risk_score": 0.1}
            _assert_database_unavailable(client.post(instance.url("/v1/kernel/proposals"), json=body, headers={"x-api-key": ENV_KEY}))
            # A non-API (Django) route: the session cookie makes the Console read the session table.
            client.cookies.set("sessionid", "x" * 32)
            _assert_database_unavailable(client.get(instance.url("/console/")))
            client.cookies.clear()
            assert client.get(instance.url("/healthz")).status_code == 200  # liveness does not depend on the database
            ready = client.get(instance.url("/readyz"))
            assert ready.status_code == 503 and ready.json()["dependencies"]["database"]["status"] == "down"
    finally:
        stop(instance.process)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_exhausted_pool_is_a_503_problem_and_recovers(require_postgres, tmp_path):
    """Pool of one: the first request holds the only connection (blocked on a table lock this test holds), so
    concurrent requests time out waiting for the pool; once the lock goes, the service answers again."""
    import psycopg

    instance = serve(
        tmp_path,
        AION_GATEWAY_API_KEYS=f"{ENV_KEY}:kernel.proposer|auditor:acme",
        AION_DB_POOL_SIZE="1",
        AION_DB_POOL_TIMEOUT_SECONDS="0.5",
    )
    db = connection.settings_dict
    locker = psycopg.connect(
        host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, user=db.get("USER") or "postgres", dbname=db["NAME"]
    )
    try:
        locker.execute("LOCK TABLE kernel_proposal IN ACCESS EXCLUSIVE MODE")
        answers: list[httpx.Response] = []
        lock = threading.Lock()

        def call() -> None:
            with httpx.Client(timeout=60) as client:
                response = client.get(instance.url("/v1/kernel/proposals"), headers={"x-api-key": ENV_KEY})
            with lock:
                answers.append(response)

        first = threading.Thread(target=call)
        first.start()
        # Wait (bounded) until the first request is blocked on the lock, holding the pool's only connection.
        waiting = 0
        for _ in range(200):
            (waiting,) = locker.execute(  # type: ignore[misc]
                "SELECT count(*) FROM pg_locks WHERE relation = 'kernel_proposal'::regclass AND NOT granted"
            ).fetchone()
            if waiting:
                break
            threading.Event().wait(0.05)
        assert waiting, "the first request never reached the locked table"
        others = [threading.Thread(target=call) for _ in range(3)]
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(timeout=30)
        refused = list(answers)
        assert len(refused) == 3
        for response in refused:
            _assert_database_unavailable(response)
        locker.rollback()  # releases the lock: the first request completes
        first.join(timeout=30)
        assert answers[-1].status_code == 200, answers[-1].text
        with httpx.Client(timeout=30) as client:
            assert client.get(instance.url("/v1/kernel/proposals"), headers={"x-api-key": ENV_KEY}).status_code == 200
        assert "Traceback" not in instance.log() or "Internal Server Error" not in instance.log()
    finally:
        locker.close()
        stop(instance.process)
