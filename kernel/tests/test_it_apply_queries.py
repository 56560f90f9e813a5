"""The SQL of the final approval (approve → applied): each row read once, no N+1, one UPDATE per row.

Counted through the API on both engines; only statements on kernel tables are bounded here
(the gateway's, audit's and outbox's own statements belong to their apps' tests).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aion.testing.kernel_proposals import Persona, act, change, submit

pytestmark = pytest.mark.django_db


def kernel_statements(queries: list[dict[str, Any]]) -> list[str]:
    return [q["sql"] for q in queries if '"kernel_' in q["sql"]]


def by_kind(statements: list[str]) -> Counter[str]:
    """('SELECT kernel_approval', 2), ... keyed by verb and first kernel table named."""
    counts: Counter[str] = Counter()
    for sql in statements:
        verb = sql.split(None, 1)[0].upper()
        table = sql[sql.index('"kernel_') + 1 :].split('"', 1)[0]
        counts[f"{verb} {table}"] += 1
    return counts


def test_the_final_approval_reads_each_kernel_row_once(proposer: Persona, admin: Persona, admin2: Persona) -> None:
    seed = submit(proposer, changes=[change("vm.swappiness", None, 10)])
    assert act(admin, seed["id"], "approve").json()["state"] == "applied"  # the scope has a head and revision 1
    proposal = submit(proposer, changes=[change("net.core.somaxconn", None, 1024)], risk_score=0.7)
    assert act(admin, proposal["id"], "approve").json()["state"] == "pending"

    with CaptureQueriesContext(connection) as queries:
        response = act(admin2, proposal["id"], "approve")

    assert response.status_code == 200 and response.json()["state"] == "applied"
    assert response.json()["base_revision"] == 1 and response.json()["applied_revision"] == 2
    statements = kernel_statements(queries.captured_queries)
    counts = by_kind(statements)
    # The request's read, then the locked re-read; the approvals once under the lock (not per state
    # rendered, not a COUNT, not an EXISTS); the scope head locked, then its revision read.
    assert counts["SELECT kernel_proposal"] == 2, counts
    assert counts["SELECT kernel_approval"] == 1, counts
    assert counts["SELECT kernel_configscope"] == 1, counts
    assert counts["SELECT kernel_configrevision"] == 1, counts
    # approved and applied are one UPDATE of the proposal row.
    assert counts["UPDATE kernel_proposal"] == 1, counts
    assert counts["INSERT kernel_approval"] == 1 and counts["INSERT kernel_configrevision"] == 1, counts
    assert counts["UPDATE kernel_configscope"] == 1, counts
    assert len(statements) == 9, statements
