"""Filters of the module list (``?health=down&pool=gpu&enabled=true&intent=summarize``)."""

from __future__ import annotations

from typing import Any

import django_filters

from modules.choices import HealthStatus, Pool
from modules.models import Module


class ModuleFilterSet(django_filters.FilterSet):
    health = django_filters.ChoiceFilter(choices=HealthStatus.choices)
    enabled = django_filters.BooleanFilter()
    pool = django_filters.ChoiceFilter(choices=Pool.choices, field_name="active_version__pool")
    intent = django_filters.CharFilter(method="filter_intent")

    class Meta:
        model = Module
        fields = ["health", "enabled", "pool", "intent"]

    def filter_intent(self, queryset: Any, name: str, value: str) -> Any:
        # JSON containment is not portable to SQLite; the intents list is short, so filter in Python.
        ids = [m.pk for m in queryset.select_related("active_version") if m.active_version and value in m.active_version.intents]
        return queryset.filter(pk__in=ids)
