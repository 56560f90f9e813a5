"""Domain errors map to problem JSON once, in aion.problems (docs/architecture.md, "Errors")."""

from __future__ import annotations

import pytest

from aion import errors
from aion.problems import DOMAIN_STATUS, domain_status, exception_handler


class ProposalExpired(errors.Expired):
    code = "proposal-expired"


@pytest.mark.parametrize("kind", sorted(DOMAIN_STATUS, key=lambda k: k.__name__))
def test_every_kind_has_a_status_and_its_code_as_type(kind: type[errors.DomainError]) -> None:
    response = exception_handler(kind("refused", errors={"field": ["bad"]}), {})
    assert response.status_code == DOMAIN_STATUS[kind]
    assert response.data["type"] == f"urn:aion:problem:{kind.code}"
    assert response.data["detail"] == "refused"
    assert response.data["errors"] == {"field": ["bad"]}


def test_a_subclass_keeps_its_kinds_status_and_names_its_own_reason() -> None:
    error = ProposalExpired("The proposal expired.", expired_at="2026-01-01T00:00:00Z")
    assert domain_status(error) == 410
    body = exception_handler(error, {}).data
    assert body["type"] == "urn:aion:problem:proposal-expired"
    assert body["expired_at"] == "2026-01-01T00:00:00Z"


def test_unavailable_says_when_to_retry() -> None:
    response = exception_handler(errors.Unavailable("Vault is down.", retry_after=5), {})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_an_instance_may_name_a_finer_code() -> None:
    body = exception_handler(errors.Conflict("Taken.", code="version-conflict"), {}).data
    assert body["type"] == "urn:aion:problem:version-conflict"
