"""Console list pages: the API's FilterSet over a queryset, rendered as a django-tables2 table (sortable, paginated).

Was ``console.listing`` (moved here so every app's Console views share it; apps do not import ``console``).
One helper for every list (audit, incidents, deliveries, job runs, uploads): invalid filters show their errors
and an empty table (the same rule as the API's 400), never a 500. ``csv_response`` streams the same table,
with the same filters and tenant scoping, as CSV (the audit and deliveries exports).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import django_tables2 as tables
from django.http import HttpRequest, QueryDict, StreamingHttpResponse
from django_tables2 import RequestConfig

PAGE_SIZE = 50
EXPORT_MAX_ROWS = 100_000  # one export is bounded; narrow the filters for more
# A cell starting with one of these is a formula to a spreadsheet (CSV injection): prefixed with a quote.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ConsoleTable(tables.Table):
    """The base of every Console table: the Console's table template (pager with counts) and its CSS class."""

    class Meta:
        template_name = "console/_table.html"
        attrs = {"class": "listing"}


@dataclass
class FilteredTable:
    table: Any
    filterset: Any  # its ``form`` is the page's filter bar
    errors: dict[str, list[str]]
    query: str  # the filters as a query string without ``page`` and ``sort``, for export links and forms


def filtered_table(
    request: HttpRequest,
    filterset_class: Any,
    queryset: Any,
    table_class: Any,
    params: QueryDict | None = None,
    *,
    per_page: int = PAGE_SIZE,
    paginate: bool = True,
    **table_kwargs: Any,
) -> FilteredTable:
    """Filters ``queryset`` with the API's FilterSet (``params`` or the query string), then tables and pages it."""
    data = request.GET if params is None else params
    filterset = filterset_class(data, queryset=queryset)  # always bound: a FilterSet's default rules apply to no filters too
    if not filterset.is_valid():
        errors = {field: [str(e) for e in found] for field, found in filterset.errors.items()}
        rows = queryset.none()
    else:
        errors, rows = {}, filterset.qs
    table = table_class(rows, **table_kwargs)
    RequestConfig(request, paginate={"per_page": per_page} if paginate else False).configure(table)
    query = request.GET.copy()
    for control in ("page", "sort"):
        query.pop(control, None)
    return FilteredTable(table, filterset, errors, query.urlencode())


def _safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(table: Any) -> Iterator[list[str]]:
    """The table's header and rows as plain values (``exclude_from_export`` columns left out), bounded."""
    exclude = [column.name for column in table.columns if column.column.exclude_from_export]
    for index, row in enumerate(table.as_values(exclude_columns=exclude)):
        if index > EXPORT_MAX_ROWS:
            return
        yield [_safe_cell(cell) for cell in row]


def csv_response(table: Any, filename: str) -> StreamingHttpResponse:
    """Streams ``table`` (unpaginated, in its sort order) as an attachment; never buffers the whole list."""
    writer = csv.writer(_Echo())
    lines: Iterable[str] = (writer.writerow(row) for row in csv_rows(table))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
