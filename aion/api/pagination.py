"""Limit/offset pagination with bounded parameters: a huge offset is a 400 naming it, never a database overflow."""

from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

from aion.api.filters import MAX_ID

MAX_OFFSET = MAX_ID  # PostgreSQL's OFFSET is a bigint; SQLite's a signed 64-bit integer


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_offset(self, request: Any) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is not None and raw.strip().isascii() and raw.strip().isdigit() and int(raw) > MAX_OFFSET:
            raise serializers.ValidationError({self.offset_query_param: [f"Ensure this value is at most {MAX_OFFSET}."]})
        return super().get_offset(request)
