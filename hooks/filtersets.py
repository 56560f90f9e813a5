"""Filters for the deliveries list (status, endpoint, event type, time range)."""

import django_filters

from aion.api.filters import BoundedIsoDateTimeFilter, IdFilter
from hooks.choices import DeliveryStatus
from hooks.models import WebhookDelivery


class WebhookDeliveryFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)
    endpoint = IdFilter(field_name="endpoint_id")
    event_type = django_filters.CharFilter(field_name="event_type")
    event_id = django_filters.UUIDFilter(field_name="event_id")
    since = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "endpoint", "event_type", "event_id", "since", "until"]
