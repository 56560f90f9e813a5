"""A ``Problem`` raised below the edge (a service not yet converted) is caught as a DomainError and keeps its answer."""

from __future__ import annotations

from aion.errors import DomainError, Unauthenticated
from aion.problems import Problem, domain_status, exception_handler


def test_a_problem_is_a_domain_error_with_its_own_status_code_and_retry_after():
    problem = Problem(409, "Busy.", slug="delivery-in-progress", headers={"Retry-After": "1"})
    assert isinstance(problem, DomainError)
    assert (domain_status(problem), problem.code, problem.detail, problem.retry_after) == (409, "delivery-in-progress", "Busy.", 1)
    response = exception_handler(problem, {})
    assert (response.status_code, response.data["type"], response["Retry-After"]) == (409, "urn:aion:problem:delivery-in-progress", "1")


def test_an_unverified_credential_is_a_401():
    response = exception_handler(Unauthenticated("The hook could not be verified.", code="hook-unverified"), {})
    assert (response.status_code, response.data["type"]) == (401, "urn:aion:problem:hook-unverified")
