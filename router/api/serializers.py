"""Router API serializers: task input (shared by dry run and submit), tasks, revisions, decisions."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from router.choices import PreferredEngine, Priority, Privacy
from router.models import PolicyRevision, Task
from router.services import task_state


class SLASerializer(serializers.Serializer):
    budget_usd = serializers.FloatField(required=False, allow_null=True, min_value=0)
    p95_ms = serializers.FloatField(required=False, allow_null=True, min_value=0)
    privacy = serializers.ChoiceField(choices=Privacy.choices, required=False, default=Privacy.ALLOW_API)

    def to_internal_value(self, data: Any) -> Any:
        unknown = {k: ["unknown field"] for k in sorted(set(data) - set(self.fields))} if isinstance(data, dict) else {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            raise serializers.ValidationError({**detail, **unknown}) from exc
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class TaskInputSerializer(serializers.Serializer):
    intent = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$", max_length=200)
    params = serializers.DictField(required=False, default=dict)
    preferred_engine = serializers.ChoiceField(choices=PreferredEngine.choices, required=False, default=PreferredEngine.AUTO)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False, default=Priority.NORMAL)
    sla = SLASerializer(required=False)
    metadata = serializers.DictField(child=serializers.CharField(max_length=500, allow_blank=True), required=False, default=dict)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["sla"] = dict(attrs.get("sla") or {"privacy": Privacy.ALLOW_API})
        return attrs


class RouteInputSerializer(TaskInputSerializer):
    seed = serializers.CharField(required=False, max_length=200)


class DecisionSerializer(serializers.Serializer):
    route = serializers.CharField()
    target = serializers.CharField()
    strategy = serializers.CharField()
    chosen_by = serializers.CharField()
    reason = serializers.CharField()
    policy_revision = serializers.IntegerField()
    fallbacks = serializers.ListField(child=serializers.CharField())


class TaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["id"]

    def to_representation(self, instance: Task) -> dict[str, Any]:
        data = task_state(instance)
        data.update(
            {
                "tenant_id": instance.tenant_id,
                "params": instance.params,
                "preferred_engine": instance.preferred_engine,
                "priority": instance.priority,
                "sla": instance.sla,
                "metadata": instance.metadata,
                "strategy": instance.strategy,
                "policy_revision": instance.policy_revision,
                "fallbacks": instance.fallbacks,
                "attempts": instance.attempts,
                "output": instance.output,
                "runs": instance.runs,
                "submitted_by": instance.submitted_by,
                "created_at": instance.created_at.isoformat(),
                "started_at": instance.started_at.isoformat() if instance.started_at else None,
                "finished_at": instance.finished_at.isoformat() if instance.finished_at else None,
                "links": {"self": f"/v1/tasks/{instance.id}", "events": f"/v1/tasks/{instance.id}/events"},
            }
        )
        return data


class PolicyRevisionSerializer(serializers.ModelSerializer):
    revision = serializers.IntegerField(source="number")

    class Meta:
        model = PolicyRevision
        fields = ["revision", "sha256", "author", "created_at", "source", "restored_from", "path", "diff"]


class RollbackInputSerializer(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1)
