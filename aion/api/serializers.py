"""Serializers for the platform's own API resources (the audit log, security incidents)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from aion.incidents import MAX_NOTE
from aion.models import AuditRecord, SecurityIncident


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


class SecurityIncidentSerializer(serializers.ModelSerializer):
    class Meta:
        model = SecurityIncident
        fields = [
            "id",
            "created_at",
            "tenant_id",
            "kind",
            "reason",
            "state",
            "source_ip",
            "headers",
            "body_sha256",
            "details",
            "request_id",
            "acknowledged_at",
            "acknowledged_by",
            "note",
        ]
        read_only_fields = fields


class StringField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class IncidentAcknowledgeSerializer(serializers.Serializer):
    note = StringField(max_length=MAX_NOTE, allow_blank=False, trim_whitespace=True, help_text="Why it is acknowledged")
