"""Filters for the task list (``GET /v1/tasks?status=OK&intent=chat.*&target=...``)."""

from __future__ import annotations

import re

import django_filters
from django.db.models import QuerySet

from aion.api.filters import BoundedIsoDateTimeFilter
from router.choices import Route, TaskStatus
from router.models import Task


class TaskFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=TaskStatus.choices)
    route = django_filters.ChoiceFilter(choices=Route.choices)
    target = django_filters.CharFilter()
    intent = django_filters.CharFilter(method="filter_intent", help_text="exact, or a glob like chat.*")
    created_after = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Task
        fields = ["status", "route", "target", "intent", "created_after", "created_before"]

    def filter_intent(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        if any(ch in value for ch in "*?"):
            pattern = "^" + re.escape(value).replace(r"\*", ".*").replace(r"\?", ".") + "$"
            return queryset.filter(intent__regex=pattern)
        return queryset.filter(intent=value)
