"""Request and response shapes of the kernel API (the response is ``services.proposal_state``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from kernel import services
from kernel.models import Proposal


class ChangeSerializer(serializers.Serializer):
    """One change: ``{key, from, to}``; ``from``/``to`` null mean the key is absent."""

    key = serializers.CharField(max_length=200)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        # "from" is a Python keyword, so these two are added by name.
        fields["from"] = serializers.JSONField(allow_null=True, help_text="The current value (null = absent)")
        fields["to"] = serializers.JSONField(allow_null=True, help_text="The new value (null = remove the key)")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("from", "to"):
            value = attrs.get(name)
            if isinstance(value, dict | list):
                raise serializers.ValidationError({name: ["Values must be scalars (number, string, boolean or null)."]})
        return attrs


class ProposalCreateSerializer(serializers.Serializer):
    scope = serializers.CharField(max_length=64)
    target = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    changes = ChangeSerializer(many=True, allow_empty=False, max_length=services.MAX_CHANGES)  # type: ignore[call-arg]
    justification = serializers.CharField(max_length=services.MAX_TEXT)
    risk_score = serializers.FloatField(min_value=0, max_value=1)
    ttl_seconds = serializers.IntegerField(min_value=1, required=False)


class BreakglassCreateSerializer(ProposalCreateSerializer):
    """Immediate break-glass: the same fields; the justification is mandatory and checked by the policy."""


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=services.MAX_TEXT, required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=services.MAX_TEXT)


class ApplySerializer(serializers.Serializer):
    """Apply takes no fields."""


class BreakglassApproveSerializer(serializers.Serializer):
    justification = serializers.CharField(max_length=services.MAX_TEXT)


class ProposalSerializer(serializers.BaseSerializer):
    """A proposal as served: ``services.proposal_state`` (plus diff and history on the detail)."""

    def to_representation(self, instance: Proposal) -> dict[str, Any]:
        return services.proposal_state(instance)


class ProposalDetailSerializer(ProposalSerializer):
    def to_representation(self, instance: Proposal) -> dict[str, Any]:
        data = services.proposal_state(instance)
        data["diff"] = services.proposal_diff(instance)
        data["history"] = services.proposal_history(instance)
        return data
