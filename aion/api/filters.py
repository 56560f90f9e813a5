"""Bounded filter fields and path converters: no query string or path id reaches the database out of range.

- Datetimes are normalised to UTC before the query. An offset beyond ±15:59 made PostgreSQL raise
  ``DataError: time zone displacement out of range``; a year 0001 or 9999 value whose UTC form leaves
  the datetime range raised ``OverflowError`` on SQLite. Both are now a 400 problem naming the field.
- Ids are integers in 1..2**63-1 (a bigint primary key); larger ones raised ``OverflowError`` on SQLite.
  A path id out of range matches no route (404); a filter id out of range is a 400.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.urls import register_converter

MAX_ID = 2**63 - 1
# RFC 3339 offsets are ±HH:MM with HH < 24; PostgreSQL accepts displacements up to ±15:59.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


class BoundedIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise ValidationError("The UTC offset must be within ±15:59.", code="offset_out_of_range")
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError("The date is out of range once converted to UTC.", code="out_of_range") from None


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 datetime filter that answers 400, never 500, for any value."""

    field_class = BoundedIsoDateTimeField


class IdField(forms.IntegerField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.NumberFilter):
    """An integer id filter bounded to a bigint (1..2**63-1)."""

    field_class = IdField


class IdConverter:
    """``<id:pk>`` in URL patterns: like ``<int:pk>`` but ids beyond a bigint match no route (404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("id out of range")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
