"""Serializers for the platform's own API resources (the audit log)."""

from __future__ import annotations

from rest_framework import serializers

from aion.models import AuditRecord


class AuditRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditRecord
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_kind",
            "tenant_id",
            "action",
            "resource_type",
            "resource_id",
            "before",
            "after",
            "request_id",
            "result",
            "metadata",
        ]
        read_only_fields = fields
