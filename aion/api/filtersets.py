"""Filters for ``GET /v1/audit`` and ``GET /v1/security/incidents`` (and their Console pages)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms

from aion.api.filters import BoundedIsoDateTimeFilter
from aion.models import AuditRecord, AuditResult, IncidentKind, IncidentState, SecurityIncident


class AuditRecordFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor")
    actor_kind = django_filters.CharFilter(field_name="actor_kind")
    action = django_filters.CharFilter(field_name="action")
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    resource_type = django_filters.CharFilter(field_name="resource_type")
    resource_id = django_filters.CharFilter(field_name="resource_id")
    resource = django_filters.CharFilter(method="filter_resource", label="type or type:id")
    request_id = django_filters.CharFilter(field_name="request_id")
    result = django_filters.ChoiceFilter(field_name="result", choices=AuditResult.choices)
    since = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditRecord
        fields = ["actor", "actor_kind", "action", "resource_type", "resource_id", "request_id", "result"]

    def filter_resource(self, queryset: Any, name: str, value: str) -> Any:
        resource_type, _, resource_id = value.partition(":")
        queryset = queryset.filter(resource_type=resource_type)
        return queryset.filter(resource_id=resource_id) if resource_id else queryset


class IpFilter(django_filters.CharFilter):
    """An IPv4/IPv6 address (a bad one is a 400, never an ``inet`` cast error on PostgreSQL)."""

    field_class = forms.GenericIPAddressField


class SecurityIncidentFilterSet(django_filters.FilterSet):
    """``GET /v1/security/incidents`` and the Console incidents page: kind, state, source address, reason and time."""

    kind = django_filters.ChoiceFilter(field_name="kind", choices=IncidentKind.choices)
    state = django_filters.ChoiceFilter(field_name="state", choices=IncidentState.choices)
    source = IpFilter(field_name="source_ip", label="source IP address")
    reason = django_filters.CharFilter(field_name="reason")
    since = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = SecurityIncident
        fields = ["kind", "state", "reason"]
