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


class TaskEngineSerializer(serializers.Serializer):
    route = serializers.CharField(allow_blank=True)
    target = serializers.CharField(allow_blank=True)
    chosen_by = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)


class TaskUsageSerializer(serializers.Serializer):
    latency_ms = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField(allow_null=True)
    cost_usd = serializers.FloatField()


class TaskErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField(allow_blank=True)


class TaskLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    events = serializers.CharField()


class TaskSerializer(serializers.Serializer):
    """A task as the API returns it: ``task_state`` (the public result shape) plus what was submitted and the runs.

    The fields are declared for the OpenAPI document; ``to_representation`` builds the body.
    """

    id = serializers.UUIDField()
    status = serializers.CharField()
    intent = serializers.CharField()
    engine = TaskEngineSerializer()
    usage = TaskUsageSerializer()
    error = TaskErrorSerializer(allow_null=True)
    updated_at = serializers.DateTimeField()
    tenant_id = serializers.CharField()
    params = serializers.JSONField()
    preferred_engine = serializers.CharField()
    priority = serializers.CharField()
    sla = serializers.JSONField()
    metadata = serializers.JSONField()
    strategy = serializers.CharField(allow_blank=True)
    policy_revision = serializers.IntegerField(allow_null=True)
    fallbacks = serializers.JSONField()
    attempts = serializers.JSONField(help_text="One entry per target call")
    output = serializers.JSONField(allow_null=True)
    runs = serializers.JSONField()
    submitted_by = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    links = TaskLinksSerializer()

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
        fields = ["revision", "sha256", "author", "created_at", "source", "restored_from", "path", "pending", "training_report", "diff"]


class RollbackInputSerializer(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1)


# --- Response shapes (the OpenAPI document's; the views build these bodies as dicts) ------------------------


class RevisionChangeSerializer(serializers.Serializer):
    """reload and rollback: 201 with the new revision, 200 when nothing changed."""

    changed = serializers.BooleanField()
    revision = PolicyRevisionSerializer()


class ActivePolicyRevisionSerializer(PolicyRevisionSerializer):
    content = serializers.JSONField()

    class Meta(PolicyRevisionSerializer.Meta):
        fields = [*PolicyRevisionSerializer.Meta.fields, "content"]


class PolicyHistoryItemSerializer(PolicyRevisionSerializer):
    class Meta(PolicyRevisionSerializer.Meta):
        fields = [f for f in PolicyRevisionSerializer.Meta.fields if f != "diff"]


class PolicyResponseSerializer(serializers.Serializer):
    active = ActivePolicyRevisionSerializer(allow_null=True)
    history = PolicyHistoryItemSerializer(many=True)


class TargetRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    route = serializers.CharField()
    price_per_1k_tokens = serializers.FloatField(allow_null=True)
    health = serializers.CharField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)
    samples = serializers.IntegerField()
    in_flight = serializers.IntegerField()


class BudgetSerializer(serializers.Serializer):
    daily_usd = serializers.FloatField(allow_null=True)
    spent_today_usd = serializers.FloatField()


class TargetsResponseSerializer(serializers.Serializer):
    policy_revision = serializers.IntegerField()
    targets = TargetRowSerializer(many=True)
    budget = BudgetSerializer()


# --- The learning loop: samples export, training, submitted revisions ------------------------------------------


class ReloadInputSerializer(serializers.Serializer):
    """POST /v1/router/policy/reload: no body re-reads the file; ``revision`` activates a pending submitted one."""

    revision = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)


class RuntimeSampleSerializer(serializers.Serializer):
    sample_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    task_id = serializers.UUIDField(allow_null=True)
    intent = serializers.CharField(allow_null=True)
    rule = serializers.CharField(allow_null=True, help_text="The task's chosen_by: rule:<name> or default")
    target = serializers.CharField()
    route = serializers.CharField()
    outcome = serializers.CharField()
    latency_ms = serializers.FloatField()
    tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField()


class TrainInputSerializer(serializers.Serializer):
    since = serializers.CharField(max_length=64, default="7d", help_text="A duration back from now (7d, 12h) or an ISO 8601 time")
    until = serializers.CharField(max_length=64, required=False, help_text="ISO 8601; default now")


class TrainResponseSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["promote", "no-change"])
    reason = serializers.CharField()
    candidate = serializers.CharField(allow_null=True, help_text="The candidate policy (YAML); submit it to promote")
    report = serializers.JSONField(help_text="Samples used, per-target figures, changes, expected figures before and after")


class RevisionSubmitSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=1_000_000, trim_whitespace=False, help_text="The policy document (YAML)")
    report = serializers.JSONField(required=False, allow_null=True, help_text="The training run's report, stored on the revision")
