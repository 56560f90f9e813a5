"""Request and response shapes of the kernel API (the response is ``presenters.proposal_state``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from kernel import presenters, services
from kernel.models import Proposal


class StrictSerializer(serializers.Serializer):
    """Rejects unknown fields: a typo (``"too"`` for ``"to"``, ``"risk"`` for ``"risk_score"``) must
    fail with a field error instead of being dropped and silently changing what is proposed."""

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = {str(name): ["Unknown field."] for name in data if name not in writable}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**unknown, **exc.detail}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class ChangeSerializer(StrictSerializer):
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


class ProposalCreateSerializer(StrictSerializer):
    scope = serializers.CharField(max_length=64)
    target = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    changes = ChangeSerializer(many=True, allow_empty=False, max_length=services.MAX_CHANGES)  # type: ignore[call-arg]
    justification = serializers.CharField(max_length=services.MAX_TEXT)
    risk_score = serializers.FloatField(min_value=0, max_value=1)
    ttl_seconds = serializers.IntegerField(min_value=1, required=False)


class BreakglassCreateSerializer(ProposalCreateSerializer):
    """Immediate break-glass: the same fields; the justification is mandatory and checked by the policy."""


class ApproveSerializer(StrictSerializer):
    comment = serializers.CharField(max_length=services.MAX_TEXT, required=False, allow_blank=True, default="")


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=services.MAX_TEXT)


class ApplySerializer(StrictSerializer):
    """Apply takes no fields."""


class BreakglassApproveSerializer(StrictSerializer):
    justification = serializers.CharField(max_length=services.MAX_TEXT)


class ApprovalOutSerializer(serializers.Serializer):
    approver = serializers.CharField()
    approver_kind = serializers.CharField()
    approved_at = serializers.DateTimeField()
    comment = serializers.CharField()
    content_hash = serializers.CharField()
    breakglass = serializers.BooleanField()


class ProposalSerializer(serializers.Serializer):
    """A proposal as served: ``presenters.proposal_state`` (fields declared for the OpenAPI schema)."""

    id = serializers.UUIDField(read_only=True)
    tenant_id = serializers.CharField(read_only=True)
    scope = serializers.CharField(read_only=True)
    target = serializers.CharField(read_only=True)
    state = serializers.CharField(read_only=True)
    changes = serializers.JSONField(read_only=True)
    justification = serializers.CharField(read_only=True)
    risk_score = serializers.FloatField(read_only=True)
    ttl_seconds = serializers.IntegerField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    base_revision = serializers.IntegerField(read_only=True, allow_null=True)
    content_hash = serializers.CharField(read_only=True)
    proposer = serializers.CharField(read_only=True)
    required_approvals = serializers.IntegerField(read_only=True)
    approvals = ApprovalOutSerializer(many=True, read_only=True)
    auto_apply = serializers.BooleanField(read_only=True)
    breakglass = serializers.BooleanField(read_only=True)
    drifted_keys = serializers.JSONField(read_only=True)
    applied_revision = serializers.IntegerField(read_only=True, allow_null=True)
    rollback_revision = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    version = serializers.IntegerField(read_only=True)
    etag = serializers.CharField(read_only=True)

    def to_representation(self, instance: Proposal) -> dict[str, Any]:
        return presenters.proposal_state(instance)


class RevisionSerializer(serializers.Serializer):
    """A configuration revision: ``{scope, revision, document, sha256, created_at, proposal_id}``."""

    scope = serializers.CharField(read_only=True)
    revision = serializers.IntegerField(read_only=True)
    document = serializers.DictField(read_only=True)
    sha256 = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True, allow_null=True)
    proposal_id = serializers.UUIDField(read_only=True, allow_null=True)
    parent = serializers.IntegerField(read_only=True, allow_null=True)  # type: ignore[assignment]
    kind = serializers.CharField(read_only=True, allow_null=True)
    author = serializers.CharField(read_only=True, allow_null=True)


class RevisionDetailSerializer(RevisionSerializer):
    rollout = serializers.JSONField(read_only=True, help_text="kernel.hosts.revision_rollout: hosts converged / targeted")


class ProposalDetailSerializer(ProposalSerializer):
    diff = serializers.JSONField(read_only=True)
    history = serializers.JSONField(read_only=True)
    rollout = serializers.JSONField(read_only=True, allow_null=True, help_text="Its latest revision's rollout, with rollback_complete")

    def to_representation(self, instance: Proposal) -> dict[str, Any]:
        from kernel.hosts import proposal_rollout

        data = presenters.proposal_state(instance)
        data["diff"] = presenters.proposal_diff(instance)
        data["history"] = presenters.proposal_history(instance)
        data["rollout"] = proposal_rollout(instance)  # issue 17
        return data
