"""No query string, path id or JSON body gives a 5xx: out-of-range values are 400 problems naming the field.

Each case here was a 500 before the bounded filters (``aion/api/filters.py``) and the bounded JSON
parser (``aion/api/parsers.py``): PostgreSQL refused offsets beyond ±15:59, SQLite overflowed on
years 0001/9999 with an offset and on ids beyond a bigint, and 100,000 nested arrays recursed.
"""

from __future__ import annotations

import pytest

from aion.problems import PROBLEM_CONTENT_TYPE
from aion.roles import Role
from aion.testing.factories import client_with_roles

pytestmark = pytest.mark.django_db

ALL = list(Role)

DATETIME_FILTERS = [
    ("/v1/audit", "since"),
    ("/v1/audit", "until"),
    ("/v1/kernel/proposals", "created_after"),
    ("/v1/kernel/proposals", "created_before"),
    ("/v1/tasks", "created_after"),
    ("/v1/tasks", "created_before"),
    ("/v1/hooks/deliveries", "since"),
    ("/v1/hooks/deliveries", "until"),
]
OUT_OF_RANGE_DATETIMES = [
    "2020-01-01T00:00:00+20:00",  # beyond PostgreSQL's ±15:59 displacement
    "2020-01-01T00:00:00-16:00",
    "0001-01-01T00:00:00+05:00",  # before datetime.min once in UTC
    "9999-12-31T23:59:59-05:00",  # after datetime.max once in UTC
]


def _assert_problem(response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)
    if field is not None:
        assert field in response.json()["errors"], response.json()


@pytest.mark.parametrize(("path", "field"), DATETIME_FILTERS)
@pytest.mark.parametrize("value", OUT_OF_RANGE_DATETIMES)
def test_out_of_range_datetime_filter_is_a_400_naming_the_field(path, field, value):
    _assert_problem(client_with_roles(ALL).get(path, {field: value}), 400, field)


@pytest.mark.parametrize(("path", "field"), DATETIME_FILTERS)
def test_in_range_offsets_still_filter(path, field):
    assert client_with_roles(ALL).get(path, {field: "2020-01-01T00:00:00+15:59"}).status_code == 200
    assert client_with_roles(ALL).get(path, {field: "0001-01-01T00:00:00+00:00"}).status_code == 200


@pytest.mark.parametrize("value", ["99999999999999999999", "9223372036854775808", "0", "-1"])
def test_out_of_range_id_filter_is_a_400(value):
    _assert_problem(client_with_roles(ALL).get("/v1/hooks/deliveries", {"endpoint": value}), 400, "endpoint")


@pytest.mark.parametrize(
    "path",
    ["/v1/audit/99999999999999999999", "/v1/hooks/deliveries/9223372036854775808", "/v1/hooks/sources/99999999999999999999999"],
)
def test_out_of_range_path_id_is_a_404_problem(path):
    _assert_problem(client_with_roles(ALL).get(path), 404)


def test_largest_bigint_path_id_is_an_ordinary_404():
    _assert_problem(client_with_roles(ALL).get("/v1/audit/9223372036854775807"), 404)


NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "path",
    ["/v1/kernel/proposals", "/v1/tasks", "/v1/router/route", "/v1/memory/search", "/v1/memory/ingest", "/v1/hooks/endpoints"],
)
def test_deeply_nested_json_is_a_400(path):
    response = client_with_roles(ALL).generic("POST", path, NESTED, content_type="application/json")
    _assert_problem(response, 400)
    assert "AION_JSON_MAX_DEPTH" in response.json()["detail"]


def test_json_at_the_depth_limit_is_parsed_and_one_deeper_is_refused(settings):
    from rest_framework.exceptions import ParseError

    from aion.api.parsers import decode_json_body

    settings.AION_JSON_MAX_DEPTH = 4
    assert decode_json_body(b'{"a": [[{"b": 1}]]}') == {"a": [[{"b": 1}]]}
    with pytest.raises(ParseError):
        decode_json_body(b'{"a": [[{"b": [1]}]]}')


def test_deeply_nested_inbound_hook_is_a_400():
    from rest_framework.test import APIClient

    response = APIClient().generic("POST", "/v1/hooks/approval", NESTED, content_type="application/json")
    assert response.status_code in (400, 401), response.content  # never a 500: unsigned is refused first, or the body
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)


def test_deeply_nested_hook_body_is_a_malformed_request_problem():
    from aion.problems import Problem
    from hooks.api.serializers import parse_approval_body

    with pytest.raises(Problem) as caught:
        parse_approval_body(NESTED)
    assert caught.value.status_code == 400
