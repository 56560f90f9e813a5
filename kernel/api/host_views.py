"""The hosts API under /v1/kernel/hosts (issue 17 §2): node agents' reports and every host's state.

``POST /v1/kernel/hosts/{host}/report`` is the node agent's (role ``kernel.agent``, bound to the host or its
pool); ``GET /v1/kernel/hosts`` is open to the kernel read roles and ``auditor``. The logic is ``kernel.hosts``.
"""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.pagination import Pagination
from aion.api.schema import page_parameters, paginated
from aion.api.views import APIView
from aion.auth.principal import Principal
from aion.rbac import Role
from kernel import hosts, services
from kernel.api.views import KernelPermission
from kernel.choices import HostState
from kernel.host_filtersets import HostFilterSet


class ResultSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=hosts.OUTCOMES)
    error = serializers.CharField(allow_null=True, max_length=hosts.MAX_ERROR_LENGTH)


class ScopeReportSerializer(serializers.Serializer):
    revision = serializers.IntegerField(min_value=0, max_value=hosts.MAX_REVISION, help_text="The revision the agent applied (0 = none)")
    sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="sha256 of the document it applied, as served")
    observed = serializers.DictField(
        child=serializers.CharField(max_length=hosts.MAX_VALUE_LENGTH), help_text="key -> observed value (a string)"
    )
    results = serializers.DictField(child=ResultSerializer(), help_text="key -> outcome of the last apply")


class HostReportSerializer(serializers.Serializer):
    """The report body (the schema of the OpenAPI document; ``kernel.hosts.parse_report`` validates it)."""

    pool = serializers.RegexField(hosts.POOL_NAME.pattern)
    agent_version = serializers.CharField(max_length=hosts.MAX_VERSION_LENGTH, required=False)
    heartbeat = serializers.BooleanField(required=False, help_text="True for a periodic report with no change")
    scopes = serializers.DictField(child=ScopeReportSerializer(), required=False, help_text=f"At most {hosts.MAX_SCOPES} scopes")

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        # "errors" is a Serializer attribute, so the field is added by name.
        fields["errors"] = serializers.ListField(
            child=serializers.CharField(max_length=hosts.MAX_ERROR_LENGTH), max_length=hosts.MAX_ERRORS, required=False
        )
        return fields


class ScopeStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=HostState.choices)
    revision = serializers.IntegerField()
    desired_revision = serializers.IntegerField()
    sha256 = serializers.CharField()
    drifted_keys = serializers.JSONField(help_text="[{key, desired, observed}]")
    failed_keys = serializers.JSONField(help_text="[{key, error}]")
    observed = serializers.DictField(child=serializers.CharField())
    reported_at = serializers.DateTimeField()


class HostSerializer(serializers.Serializer):
    """A host as served: ``kernel.hosts.host_state``."""

    name = serializers.CharField()
    pool = serializers.CharField()
    state = serializers.ChoiceField(choices=HostState.choices)
    agent_version = serializers.CharField()
    last_report_at = serializers.DateTimeField()
    first_seen_at = serializers.DateTimeField()
    state_since = serializers.DateTimeField()
    scopes = serializers.DictField(child=ScopeStateSerializer())

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["errors"] = serializers.ListField(child=serializers.CharField(), help_text="The agent's errors in its last report")
        return fields


class RolloutSerializer(serializers.Serializer):
    """A revision's rollout: ``kernel.hosts.revision_rollout``."""

    revision = serializers.IntegerField()
    target = serializers.CharField(help_text='"" = all hosts, else a pool')
    targeted = serializers.IntegerField()
    converged = serializers.IntegerField()
    ratio = serializers.FloatField(allow_null=True)
    complete = serializers.BooleanField()
    states = serializers.DictField(child=serializers.IntegerField())
    hosts = serializers.JSONField()
    hosts_truncated = serializers.BooleanField()


def _principal(request: Any) -> Principal:
    return cast(Principal, request.user)


class HostReportView(APIView):
    """``POST /v1/kernel/hosts/{host}/report``: a node agent's observed state (role kernel.agent, its own host only)."""

    required_role = Role.KERNEL_AGENT
    rate_limit_class = "ingest"  # a pool's key reports for every host of the pool, each on a heartbeat

    @extend_schema(request=HostReportSerializer, responses={200: HostSerializer}, operation_id="v1_kernel_hosts_report")
    def post(self, request: Request, host: str) -> Response:
        report = hosts.parse_report(request.data)
        return Response(hosts.record_report(_principal(request), host, report))


class HostListView(APIView):
    """``GET /v1/kernel/hosts``: every host of the tenant with its live state, filtered by pool, state and name."""

    permission_classes = [KernelPermission]
    read_any_of = services.READ_ROLES
    required_role = Role.KERNEL_PROPOSER

    @extend_schema(
        responses=paginated(HostSerializer, "PaginatedHostList"),
        parameters=[
            *page_parameters(),
            OpenApiParameter("pool", str),
            OpenApiParameter("state", str, many=True, enum=[s.value for s in HostState]),
            OpenApiParameter("name", str, description="Hosts whose name contains it"),
        ],
        operation_id="v1_kernel_hosts_list",
    )
    def get(self, request: Request) -> Response:
        tenant_id = _principal(request).tenant_id
        filterset = HostFilterSet(request.query_params, queryset=hosts.host_rows(tenant_id))
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        paginator = Pagination()
        page: list[Any] | None = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(hosts.host_states(page or [], tenant_id=tenant_id))
