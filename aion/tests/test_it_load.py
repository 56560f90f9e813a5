"""64 concurrent clients against the served product on PostgreSQL: no 5xx, and connections stay within the pool.

The web process is started exactly as the Dockerfile's CMD starts it, on this run's test database. 64
threads, each a keep-alive client, mix reads, proposal submits, approvals (which apply: concurrent applies
on one scope), memory ingest chunks and webhook endpoint writes for at least 2,000 requests. A sampler
polls ``pg_stat_activity`` for the served process's connections (tagged by ``application_name``) the
whole time. No timing assertions: the test proves behaviour under load, ``bench/`` measures speed.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from django.db import connection

from aion.roles import Role
from aion.testing.factories import make_api_key
from aion.testing.processes import ServedInstance, serve, stop

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENTS = 64
REQUESTS = 2_000
POOL_SIZE = 8
# Keys of the guardrail policy with wide ranges, and each one's minimum: every submit is valid.
SYSCTL_KEYS = [("net.core.somaxconn", 128), ("net.core.rmem_max", 212992), ("net.core.wmem_max", 212992), ("vm.max_map_count", 65530)]
LIMITS_LIFTED = {f"AION_RATE_LIMIT_{name}": "100000000/60" for name in ("DEFAULT", "WRITE", "INGEST", "HOOKS")}


@pytest.fixture()
def served_on_postgres(require_postgres, tmp_path) -> Iterator[tuple[ServedInstance, str]]:
    application = f"aion-load-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    url = f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    instance = serve(
        tmp_path,
        DATABASE_URL=f"{url}?application_name={application}",
        AION_DB_POOL_SIZE=str(POOL_SIZE),
        CELERY_BROKER_URL="memory://",  # nothing consumes here; queued tasks must not reach a later test's worker
        AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS="1",
        AION_RATE_LIMIT_KEY_PREFIX=f"load-{application}:rl",
        AION_IDEMPOTENCY_KEY_PREFIX=f"load-{application}:idem",
        **LIMITS_LIFTED,
    )
    yield instance, application
    stop(instance.process)


class ConnectionSampler(threading.Thread):
    """Polls pg_stat_activity for the served process's connections; ``peak`` is the most seen at once."""

    def __init__(self, application: str) -> None:
        super().__init__(daemon=True)
        self.application = application
        self.peak = 0
        self.samples = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        db = connection.settings_dict
        with psycopg.connect(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, user=db.get("USER") or "postgres",
                             dbname=db["NAME"], autocommit=True) as conn:  # fmt: skip
            while not self.stopping.wait(0.02):
                (count,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [self.application]).fetchone()  # type: ignore[misc]
                self.peak = max(self.peak, int(count))
                self.samples += 1


def test_64_concurrent_clients_get_no_5xx_and_connections_stay_within_the_pool(served_on_postgres):
    instance, application = served_on_postgres
    proposer, _ = make_api_key([Role.KERNEL_PROPOSER, Role.AUDITOR])
    admin, _ = make_api_key([Role.KERNEL_ADMIN])
    writer, _ = make_api_key([Role.MEMORY_WRITER])
    hooks_admin, _ = make_api_key([Role.HOOKS_ADMIN])
    counter = itertools.count()
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def one_round(client: httpx.Client, n: int) -> list[tuple[str, httpx.Response]]:
        kind = n % 6
        if kind == 0:
            return [("whoami", client.get(instance.url("/v1/whoami"), headers={"x-api-key": proposer}))]
        if kind == 1:
            return [("list proposals", client.get(instance.url("/v1/kernel/proposals"), headers={"x-api-key": proposer}))]
        if kind in (2, 3):  # submit, then a second admin approves: the approval applies (concurrent applies on one scope)
            body = {
                "scope": "sysctl",
                "changes": [{"key": SYSCTL_KEYS[n % len(SYSCTL_KEYS)][0], "from": None, "to": SYSCTL_KEYS[n % len(SYSCTL_KEYS)][1] + n}],
                "justification": f"load {n}",
                "risk_score": 0.1,
            }
            submitted = client.post(instance.url("/v1/kernel/proposals"), json=body, headers={"x-api-key": proposer})
            answers = [("submit", submitted)]
            if submitted.status_code == 201:
                pk = submitted.json()["id"]
                answers.append(
                    ("approve", client.post(instance.url(f"/v1/kernel/proposals/{pk}/approve"), json={}, headers={"x-api-key": admin}))
                )
            return answers
        if kind == 4:
            chunk = {
                "chunk_index": 0,
                "total_chunks": 1,
                "data": base64.b64encode(f"chunk {n}\n".encode()).decode(),
                "filename": f"{n}.txt",
            }
            return [("ingest", client.post(instance.url("/v1/memory/ingest"), json=chunk, headers={"x-api-key": writer}))]
        endpoint = {"url": f"http://127.0.0.1:9/hook/{n}", "event_types": ["kernel.proposal.*"]}
        return [("endpoint", client.post(instance.url("/v1/hooks/endpoints"), json=endpoint, headers={"x-api-key": hooks_admin}))]

    def client_loop() -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait(timeout=60)
            while (n := next(counter)) < REQUESTS:
                try:
                    answers = one_round(client, n)
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    for name, response in answers:
                        statuses[(name, response.status_code)] += 1
                        if response.status_code >= 500 and len(failures) < 20:
                            failures.append(f"{name} {response.status_code}: {response.text[:300]}")

    sampler = ConnectionSampler(application)
    sampler.start()
    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 420
    for thread in threads:
        thread.join(timeout=max(1, deadline - time.monotonic()))
    sampler.stopping.set()
    sampler.join(timeout=5)

    assert not any(thread.is_alive() for thread in threads), "clients still running at the deadline"
    assert not failures, failures
    total = sum(statuses.values())
    assert total >= REQUESTS, statuses
    unexpected = {key: count for key, count in statuses.items() if key[1] not in (200, 201, 409)}
    assert not unexpected, (unexpected, instance.log()[-3000:])
    assert statuses[("approve", 200)] > 0 and statuses[("ingest", 201)] > 0 and statuses[("endpoint", 201)] > 0, statuses
    assert sampler.samples > 10
    assert 0 < sampler.peak <= POOL_SIZE, f"{sampler.peak} connections from one process with a pool of {POOL_SIZE}"
