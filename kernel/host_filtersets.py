"""Filters of the host list (API and Console): pool, state and name.

``state`` is computed live (``kernel.hosts``: a new revision or the clock changes it without a report), so
the filter computes the states of the filtered hosts and keeps the ids in the wanted states.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils import timezone

from kernel import hosts
from kernel.choices import HostState
from kernel.models import Host


class HostFilterSet(django_filters.FilterSet):
    pool = django_filters.CharFilter(max_length=63)
    state = django_filters.MultipleChoiceFilter(choices=HostState.choices, method="filter_state")
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=253)

    class Meta:
        model = Host
        fields = ["pool", "state", "name"]

    def filter_state(self, queryset: QuerySet[Host], name: str, value: Any) -> QuerySet[Host]:
        if not value:
            return queryset
        wanted = set(value)
        now = timezone.now()
        desired: dict[str, hosts.Desired] = {}
        ids = [
            host.pk
            for host in queryset.prefetch_related("scopes")
            if hosts.live_state(host, desired.setdefault(host.tenant_id, hosts.Desired(host.tenant_id)), now) in wanted
        ]
        return queryset.filter(pk__in=ids)
