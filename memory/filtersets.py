"""Filters of the uploads list (Console): upload id, state (one or several, comma-separated) and profile,
with the same names and meaning as ``GET /v1/memory/status``'s query."""

from __future__ import annotations

import django_filters

from memory.choices import UploadState
from memory.models import Upload


class StateInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """``state=receiving,assembling``: each state must be one of UploadState."""


class UploadFilterSet(django_filters.FilterSet):
    upload_id = django_filters.UUIDFilter(field_name="id", label="Upload id")
    state = StateInFilter(field_name="state", choices=UploadState.choices, label="State")
    profile = django_filters.CharFilter(field_name="profile__name", label="Profile")

    class Meta:
        model = Upload
        fields = ["upload_id", "state", "profile"]
