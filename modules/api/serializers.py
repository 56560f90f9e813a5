"""API representations of modules, versions, activations and health checks, and the write bodies."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from modules.models import Module, ModuleActivation, ModuleHealthCheck, ModuleVersion


class ModuleVersionSerializer(serializers.ModelSerializer):
    module = serializers.CharField(source="module.name", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ModuleVersion
        fields = [
            "module",
            "version",
            "active",
            "image",
            "image_digest",
            "runtime",
            "pool",
            "node_selector",
            "intents",
            "endpoint",
            "health_path",
            "signature_key_id",
            "manifest_sha256",
            "manifest",
            "registered_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_active(self, obj: ModuleVersion) -> bool:
        return bool(obj.module.active_version_id == obj.pk and obj.module.enabled)


class ActivationSerializer(serializers.ModelSerializer):
    from_version = serializers.CharField(source="from_version.version", default=None, read_only=True)
    to_version = serializers.CharField(source="to_version.version", default=None, read_only=True)

    class Meta:
        model = ModuleActivation
        fields = ["id", "action", "from_version", "to_version", "signature_key_id", "reason", "actor", "created_at"]
        read_only_fields = fields


class HealthCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModuleHealthCheck
        fields = ["version", "url", "outcome", "status_after", "http_status", "latency_ms", "error", "response_excerpt", "checked_at"]
        read_only_fields = fields


def _active_summary(module: Module) -> dict[str, Any] | None:
    version = module.active_version
    if version is None:
        return None
    return {**version.release_fields(), "signature_key_id": version.signature_key_id}


class ModuleSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()

    class Meta:
        model = Module
        fields = ["name", "enabled", "disabled_reason", "active", "health", "created_at", "updated_at"]
        read_only_fields = fields

    def get_active(self, obj: Module) -> dict[str, Any] | None:
        return _active_summary(obj)

    def get_health(self, obj: Module) -> dict[str, Any]:
        return {
            "status": obj.health,
            "checked_at": obj.health_checked_at,
            "changed_at": obj.health_changed_at,
            "latency_ms": obj.health_latency_ms,
            "flap_count": obj.flap_count,
            "consecutive_failures": obj.consecutive_failures,
            "last_error": obj.last_health_error,
        }


class ModuleDetailSerializer(ModuleSerializer):
    recent_health_checks = serializers.SerializerMethodField()
    activations = serializers.SerializerMethodField()

    class Meta(ModuleSerializer.Meta):
        fields = [*ModuleSerializer.Meta.fields, "recent_health_checks", "activations"]
        read_only_fields = fields

    def get_recent_health_checks(self, obj: Module) -> list[dict[str, Any]]:
        return list(HealthCheckSerializer(obj.health_checks.order_by("-checked_at", "-id")[:20], many=True).data)

    def get_activations(self, obj: Module) -> list[dict[str, Any]]:
        query = obj.activations.select_related("from_version", "to_version").order_by("-id")[:20]
        return list(ActivationSerializer(query, many=True).data)


class RegisterSerializer(serializers.Serializer):
    manifest = serializers.JSONField(help_text="The module manifest (see docs/module-manifest.schema.json).")
    activate = serializers.BooleanField(default=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ActivateSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=128)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RollbackSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
