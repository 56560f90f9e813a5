"""Refused writes leave an ``access.denied`` audit record: missing role (API and Console) and tenant mismatch.

Refusals pass the rate limiter first, and at most one record per credential,
route, method and reason is written per AION_AUDIT_DENIED_INTERVAL_SECONDS.
Reads, unauthenticated calls and allowed calls leave no denial record.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, make_api_key, make_user

pytestmark = pytest.mark.django_db

PROBE = "/v1/test/probe"


@pytest.fixture(autouse=True)
def probe_urls(gateway_isolation):
    with override_settings(ROOT_URLCONF="aion.tests.gateway_urls"):
        yield


def _denials():
    return AuditRecord.objects.filter(action="access.denied").order_by("id")


def test_a_write_without_the_role_is_refused_and_audited_once_per_interval():
    raw, key = make_api_key([Role.AUDITOR])
    client = api_client(raw)
    answers = [client.post(PROBE, {"n": n}, format="json").status_code for n in range(3)]
    assert answers == [403, 403, 403]
    [denial] = _denials()
    assert denial.actor == f"key:{key.prefix}" and denial.tenant_id == TENANT
    assert denial.result == "denied"
    assert (denial.resource_type, denial.resource_id) == ("route", "probe")
    assert denial.metadata == {"reason": "missing_role", "method": "POST", "path": PROBE, "required_role": "kernel.proposer"}

    # Auditors find it through the audit API; the outsider's tenant does not see it.
    found = client_for_auditor(TENANT).get("/v1/audit", {"action": "access.denied", "result": "denied"}).json()
    assert [row["id"] for row in found["results"]] == [denial.pk]
    assert client_for_auditor(OTHER_TENANT).get("/v1/audit", {"action": "access.denied"}).json()["results"] == []


def client_for_auditor(tenant):
    raw, _ = make_api_key([Role.AUDITOR], tenant=tenant)
    return api_client(raw)


def test_every_refusal_is_recorded_when_the_interval_is_zero_and_other_credentials_count_apart():
    first, _ = make_api_key([Role.AUDITOR])
    second, _ = make_api_key([Role.MEMORY_READER])
    with override_settings(AION_AUDIT_DENIED_INTERVAL_SECONDS=0):
        for _ in range(2):
            assert api_client(first).post(PROBE, {}, format="json").status_code == 403
    assert api_client(second).post(PROBE, {}, format="json").status_code == 403
    assert _denials().count() == 3
    assert len(set(_denials().values_list("actor", flat=True))) == 2


def test_reads_unauthenticated_and_allowed_calls_leave_no_denial():
    reader, _ = make_api_key([Role.MEMORY_READER])
    assert api_client(reader).get("/v1/audit").status_code == 403  # a read without the role
    assert api_client().post(PROBE, {}, format="json").status_code == 401
    writer, _ = make_api_key([Role.KERNEL_PROPOSER])
    assert api_client(writer).post(PROBE, {}, format="json").status_code == 201
    assert not _denials().exists()


def test_a_tenant_mismatch_on_a_write_is_audited_once_even_with_an_idempotency_key():
    raw, key = make_api_key([Role.KERNEL_PROPOSER], tenant=TENANT)
    with override_settings(AION_AUDIT_DENIED_INTERVAL_SECONDS=0):
        refused = api_client(raw, HTTP_X_TENANT_ID=OTHER_TENANT).post(PROBE, {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:aion:problem:tenant-mismatch"
    [denial] = _denials()
    assert denial.actor == f"key:{key.prefix}"
    assert denial.tenant_id == TENANT  # the credential's tenant, never the header's
    assert denial.metadata["reason"] == "tenant_mismatch" and denial.metadata["requested_tenant"] == OTHER_TENANT


def test_refusals_spend_the_rate_limit_budget():
    raw, _ = make_api_key([Role.AUDITOR])
    limits = {"default": "100/60", "write": "2/60", "auth_failures": "100/60"}
    with override_settings(AION_RATE_LIMITS=limits):
        answers = [api_client(raw).post(PROBE, {}, format="json") for _ in range(3)]
    assert [a.status_code for a in answers] == [403, 403, 429]
    assert answers[2].json()["type"] == "urn:aion:problem:rate-limited"


def test_a_console_post_without_the_role_is_refused_and_audited():
    user = make_user("dora", [Role.AUDITOR])
    client = Client()
    client.force_login(user)
    assert client.get("/console/test/probe").status_code == 200  # auditors may look at any page
    assert client.post("/console/test/probe", {}).status_code == 403
    [denial] = _denials()
    assert denial.actor == "user:dora" and denial.resource_id == "console-probe"
    assert denial.metadata["required_role"] == "kernel.admin"
