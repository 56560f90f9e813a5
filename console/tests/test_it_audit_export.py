"""Console → Audit: the django-tables2 list (sort, page, filters) and its CSV export (filters, tenant, role), "created" details."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from aion import audit
from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, make_user

pytestmark = pytest.mark.django_db

LIST = "/console/audit/"
EXPORT = "/console/audit/export.csv"


def login(username: str, roles: list[str], tenant: str = TENANT) -> Client:
    client = Client()
    client.force_login(make_user(username, roles=roles, tenant=tenant))
    return client


def rows_of(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture()
def records() -> None:
    audit.record("proposal.created", "proposal", "p-1", actor="user:ada", tenant_id=TENANT, after={"state": "pending"})
    audit.record("proposal.approved", "proposal", "p-1", actor="user:bob", tenant_id=TENANT, before={"state": "pending"},
                 after={"state": "applied"})  # fmt: skip
    audit.record("module.rollback", "module", "m-1", actor='=HYPERLINK("http://x")', tenant_id=TENANT)
    audit.record("proposal.created", "proposal", "secret-of-globex", actor="user:eve", tenant_id=OTHER_TENANT)


def test_the_export_has_the_tables_columns_and_only_this_tenants_filtered_rows(records):
    auditor = login("audrey", [Role.AUDITOR])
    everything = rows_of(auditor.get(EXPORT))
    assert everything[0] == ["When", "Actor", "Action", "Resource", "Result", "Request"]
    assert len(everything) == 4 and not any("globex" in cell for row in everything for cell in row)
    # A cell a spreadsheet would run as a formula is quoted.
    assert '\'=HYPERLINK("http://x")' in [row[1] for row in everything[1:]]
    filtered = rows_of(auditor.get(EXPORT, {"action_prefix": "proposal.", "actor": "user:bob"}))
    assert [row[1:5] for row in filtered[1:]] == [["user:bob", "proposal.approved", "proposal:p-1", "success"]]
    assert auditor.get(EXPORT, {"since": "not a time"}).status_code == 400
    outsider = rows_of(login("oscar", [Role.AUDITOR], tenant=OTHER_TENANT).get(EXPORT))
    assert [row[3] for row in outsider[1:]] == ["proposal:secret-of-globex"]


def test_the_export_and_the_list_declare_their_role():
    anonymous = Client().get(EXPORT)
    assert anonymous.status_code == 302 and "/console/login/" in anonymous["Location"]
    assert login("mel", [Role.MEMORY_READER]).get(EXPORT).status_code == 403
    assert login("mel2", [Role.MEMORY_READER]).get(LIST).status_code == 403


def test_the_list_is_a_sortable_paginated_table_with_the_apis_filters(records):
    auditor = login("audrey", [Role.AUDITOR])
    html = auditor.get(LIST).content.decode()
    assert 'id="audit-records"' in html and "?sort=actor" in html and 'id="audit-export"' in html
    by_actor = auditor.get(LIST, {"sort": "actor"}).content.decode()
    assert by_actor.index("user:ada") < by_actor.index("user:bob")
    by_actor_desc = auditor.get(LIST, {"sort": "-actor"}).content.decode()
    assert by_actor_desc.index("user:bob") < by_actor_desc.index("user:ada")
    filtered = auditor.get(LIST, {"action_prefix": "module."}).content.decode()
    assert filtered.count("data-record=") == 1
    assert 'value="module."' in filtered  # the filter form keeps what was typed
    assert f'href="{EXPORT}?action_prefix=module."' in filtered  # the export link carries the filters
    bad = auditor.get(LIST, {"since": "yesterday-ish", "page": "x", "sort": "nope"})
    assert bad.status_code == 200 and 'id="filter-errors"' in bad.content.decode()


def test_details_of_a_creation_say_created(records):
    auditor = login("audrey", [Role.AUDITOR])
    created = AuditRecord.objects.get(action="proposal.created", tenant_id=TENANT)
    html = auditor.get(f"{LIST}{created.pk}/").content.decode()
    assert 'id="audit-created"' in html and "(created)" in html and 'data-field="state" data-status="added"' in html
    approved = AuditRecord.objects.get(action="proposal.approved")
    assert 'id="audit-created"' not in auditor.get(f"{LIST}{approved.pk}/").content.decode()
