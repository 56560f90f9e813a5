"""GET /v1/kernel/proposals: the SQL of a page, its representation and its count.

The list is the hot read path (module hosts and the Console poll it): a page is read as rows, not
model instances, with only the revision numbers (never a revision's document), the approvals only
for proposals that can have some, the COUNT only when the page does not tell it, and the expiry
check one indexed statement when nothing is due. Counted on both engines; only statements on
kernel tables are bounded (the gateway's own belong to its tests).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aion.models import AuditRecord
from aion.testing.kernel_proposals import Persona, act, change, kernel_events, submit

pytestmark = pytest.mark.django_db

SWAPPINESS = [change("vm.swappiness", None, 10)]


def kernel_statements(queries: list[dict[str, Any]]) -> list[str]:
    return [q["sql"] for q in queries if '"kernel_' in q["sql"]]


def listed(who: Persona, query: str = "") -> tuple[dict[str, Any], list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = who.client.get("/v1/kernel/proposals" + query)
    assert response.status_code == 200, response.json()
    return response.json(), kernel_statements(queries.captured_queries)


def test_a_page_of_twenty_fresh_proposals_is_two_statements(proposer: Persona) -> None:
    for i in range(20):
        submit(proposer, changes=SWAPPINESS, justification=f"bench {i}")

    body, statements = listed(proposer)

    assert body["count"] == 20 and len(body["results"]) == 20
    # The expiry check and the page: no COUNT (the page is not full), no approvals read (none can
    # exist on a proposal never changed since submission), no revision rows.
    assert len(statements) == 2, statements
    assert not any("COUNT(" in sql.upper() for sql in statements), statements
    assert not any('"kernel_approval"' in sql for sql in statements), statements


def test_the_page_reads_revision_numbers_never_revision_documents(proposer: Persona, admin: Persona) -> None:
    applied = submit(proposer, changes=SWAPPINESS)
    assert act(admin, applied["id"], "approve").json()["state"] == "applied"
    submit(proposer, changes=[change("vm.swappiness", 10, 20)])  # base revision 1

    body, statements = listed(proposer)

    assert [p["base_revision"] for p in body["results"]] == [1, None]
    assert body["results"][1]["applied_revision"] == 1
    assert not any('"document"' in sql for sql in statements), statements
    # Expiry check, page, approvals (the applied one has one): the revisions are joined, not read.
    assert len(statements) == 3, statements
    assert not any(sql.lstrip().upper().startswith('SELECT "KERNEL_CONFIGREVISION"') for sql in statements), statements


def test_a_full_page_counts_and_a_short_page_does_not(proposer: Persona) -> None:
    ids = [submit(proposer, changes=SWAPPINESS, justification=f"p{i}")["id"] for i in range(5)]
    newest_first = ids[::-1]

    def page(query: str) -> tuple[int, list[str], bool, bool, int]:
        body, statements = listed(proposer, query)
        counts = sum("COUNT(" in sql.upper() for sql in statements)
        return body["count"], [p["id"] for p in body["results"]], bool(body["next"]), bool(body["previous"]), counts

    assert page("?limit=2") == (5, newest_first[:2], True, False, 1)
    assert page("?limit=2&offset=2") == (5, newest_first[2:4], True, True, 1)
    assert page("?limit=2&offset=4") == (5, newest_first[4:], False, True, 0)
    assert page("?limit=5") == (5, newest_first, False, False, 1)
    assert page("?limit=6") == (5, newest_first, False, False, 0)
    assert page("?limit=2&offset=5") == (5, [], False, True, 1)
    assert page("?limit=2&offset=50") == (5, [], False, True, 1)
    assert page("?state=applied") == (0, [], False, False, 0)


def test_list_items_are_the_proposal_state_key_for_key(proposer: Persona, admin: Persona, admin2: Persona, breakglass: Persona) -> None:
    """Every kind of proposal: fresh, applied then rolled back, half-approved on a base revision,
    applied by break-glass, rejected, expired. The list item equals the detail's state (``proposal_state`` of the model),
    in the same key order, so the JSON is the same bytes."""
    fresh = submit(proposer, changes=[change("net.ipv4.tcp_fin_timeout", None, 30)])
    rolled = submit(proposer, changes=SWAPPINESS)
    assert act(admin, rolled["id"], "approve", {"comment": "fine"}).json()["state"] == "applied"
    half = submit(proposer, risk_score=0.6, changes=[change("vm.swappiness", 10, 20)])
    assert act(admin, half["id"], "approve", {"comment": "one of two"}).json()["state"] == "pending"
    assert act(admin2, rolled["id"], "rollback", {"reason": "undo"}).json()["state"] == "rolled_back"
    forced = submit(proposer, risk_score=0.6, changes=[change("net.ipv4.tcp_fin_timeout", None, 15)])
    justification = "Incident 42: the ingest pool drops connections, applying now"
    assert act(breakglass, forced["id"], "breakglass", {"justification": justification}).json()["state"] == "applied"
    rejected = submit(proposer, scope="network", changes=[change("mtu", None, 9000)])
    assert act(admin, rejected["id"], "reject", {"reason": "no"}).status_code == 200
    due = submit(proposer, ttl_seconds=60, changes=[change("net.core.somaxconn", None, 1024)])

    with mock.patch("django.utils.timezone.now", return_value=timezone.now() + timedelta(seconds=120)):
        body, _ = listed(proposer)
        items = {p["id"]: p for p in body["results"]}
        details = {pid: proposer.client.get(f"/v1/kernel/proposals/{pid}").json() for pid in items}

    assert set(items) == {fresh["id"], rolled["id"], half["id"], forced["id"], rejected["id"], due["id"]}
    for pid, item in items.items():
        detail = details[pid]
        del detail["diff"], detail["history"], detail["rollout"]  # detail-only members
        assert list(item.items()) == list(detail.items()), pid
    assert items[due["id"]]["state"] == "expired" and items[fresh["id"]]["state"] == "pending"
    assert items[rolled["id"]]["applied_revision"] == 1 and items[rolled["id"]]["rollback_revision"] == 2
    assert [a["comment"] for a in items[half["id"]]["approvals"]] == ["one of two"]
    assert items[half["id"]]["base_revision"] == 1
    assert [(a["approver"], a["breakglass"]) for a in items[forced["id"]]["approvals"]] == [(breakglass.subject, True)]


def test_the_list_expires_due_proposals_with_audit_and_event(proposer: Persona) -> None:
    """The clock is moved by patching Django's ``timezone.now`` (not our code): no engine can wait out a TTL here."""
    due = submit(proposer, ttl_seconds=60)
    kept = submit(proposer, ttl_seconds=3600, changes=SWAPPINESS)

    with mock.patch("django.utils.timezone.now", return_value=timezone.now() + timedelta(seconds=120)):
        body, _ = listed(proposer, "?state=pending")
        again, statements = listed(proposer, "?state=pending")

    assert [p["id"] for p in body["results"]] == [kept["id"]] and body["count"] == 1
    assert again == body
    assert len(statements) == 2, statements  # nothing due any more: the check and the page
    assert kernel_events(due["id"])[-1].event_type == "kernel.proposal.expired"
    assert AuditRecord.objects.filter(resource_id=due["id"], action="kernel.proposal.expire").count() == 1
