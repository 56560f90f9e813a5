"""Serializers of the hooks API: endpoints, deliveries with attempts, sources, and the approval hook body."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ParseError

from aion.api.parsers import decode_json_body
from aion.problems import Problem
from hooks import signing
from hooks.choices import ApprovalDecision, HookScope
from hooks.models import DeliveryAttempt, HookSource, WebhookDelivery, WebhookEndpoint


class ApprovalHookSerializer(serializers.Serializer):
    """The approval hook's body: the API documents it, and ``parse_approval_body`` enforces it (after verification)."""

    proposal_id = serializers.CharField(max_length=64)
    decision = serializers.ChoiceField(choices=ApprovalDecision.choices)
    approver = serializers.CharField(max_length=200)
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


def parse_approval_body(body: bytes) -> dict[str, Any]:
    """The validated body; a 400 problem when it is not JSON or breaks ``ApprovalHookSerializer``'s rules."""
    try:
        data = decode_json_body(body)
    except ParseError as exc:
        raise Problem(400, f"The body is not valid JSON: {exc.detail}", slug="malformed-request") from None
    serializer = ApprovalHookSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class WebhookEndpointSerializer(serializers.ModelSerializer):
    url = serializers.URLField(max_length=2000)
    event_types = serializers.ListField(child=serializers.CharField(max_length=200), allow_empty=False, max_length=100)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "event_types", "enabled", "disabled_reason", "secret_fingerprint",
            "previous_secret_expires_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "disabled_reason", "secret_fingerprint", "previous_secret_expires_at", "created_at", "updated_at"]


class WebhookEndpointSecretSerializer(WebhookEndpointSerializer):
    """An endpoint with its new signing secret in both forms; answered once, by create and rotate-secret."""

    # The view passes the new secret as context["secret"]; it is never read back from the database.
    secret = serializers.SerializerMethodField(help_text="The signing secret (HMAC key: its UTF-8 bytes), for x-omerta-signature.")
    secret_whsec = serializers.SerializerMethodField(
        help_text="The same key as Standard Webhooks expects it: whsec_ + base64 of the key bytes, for webhook-signature."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret", "secret_whsec"]

    def get_secret(self, endpoint: WebhookEndpoint) -> str:
        return str(self.context["secret"])

    def get_secret_whsec(self, endpoint: WebhookEndpoint) -> str:
        return signing.standard_webhooks_secret(self.context["secret"])


class RotateSecretSerializer(serializers.Serializer):
    grace_hours = serializers.FloatField(required=False, min_value=0, max_value=24 * 30)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "status_code", "latency_ms", "succeeded", "error", "response_excerpt", "next_attempt_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "delivery_id", "endpoint", "event_id", "event_type", "payload", "status", "attempts",
            "next_attempt_at", "last_attempt_at", "last_status_code", "last_error", "created_at", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields


class RecoverSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    endpoint = serializers.IntegerField(required=False, min_value=1)


class SecretFingerprintSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class HookSourceSerializer(serializers.ModelSerializer):
    name = serializers.SlugField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=HookScope.choices), allow_empty=False)
    service_identity = serializers.CharField(max_length=200, required=False, allow_blank=True)
    secret_fingerprints = serializers.SerializerMethodField()

    class Meta:
        model = HookSource
        fields = ["id", "name", "scopes", "service_identity", "enabled", "created_at", "secret_fingerprints"]
        read_only_fields = ["id", "enabled", "created_at", "secret_fingerprints"]

    @extend_schema_field(SecretFingerprintSerializer(many=True))
    def get_secret_fingerprints(self, source: HookSource) -> list[dict[str, object]]:
        return [{"fingerprint": s.fingerprint, "created_at": s.created_at, "expires_at": s.expires_at} for s in source.secrets.all()]
