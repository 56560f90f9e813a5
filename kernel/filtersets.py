"""Filters of the proposal list (API and Console): state, scope, proposer and created time."""

from __future__ import annotations

import django_filters

from aion.api.filters import BoundedIsoDateTimeFilter
from kernel.choices import ProposalState
from kernel.models import Proposal


class ProposalFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=ProposalState.choices)
    scope = django_filters.CharFilter()
    proposer = django_filters.CharFilter()
    created_after = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Proposal
        fields = ["state", "scope", "proposer", "created_after", "created_before"]
