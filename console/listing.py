"""Console list pages: the API's FilterSet over a queryset, then one page of it (shared by audit and incidents)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, QueryDict

PAGE_SIZE = 50


@dataclass
class FilteredPage:
    page: Page
    errors: dict[str, list[str]]
    query: str  # the filters as a query string without ``page``, for the pager links


def filtered_page(request: HttpRequest, filterset_class: Any, queryset: Any, params: QueryDict | None = None) -> FilteredPage:
    """Invalid filters show their errors and an empty page (the same rule as the API's 400), never a 500."""
    data = request.GET if params is None else params
    filterset = filterset_class(data or None, queryset=queryset)
    if filterset.is_bound and not filterset.is_valid():
        errors = {field: [str(e) for e in found] for field, found in filterset.errors.items()}
        rows = queryset.none()
    else:
        errors, rows = {}, filterset.qs
    query = request.GET.copy()
    query.pop("page", None)
    return FilteredPage(Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page")), errors, query.urlencode())
