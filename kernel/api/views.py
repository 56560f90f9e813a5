"""The kernel API under /v1/kernel/: proposals, their transitions, configuration and revisions.

Views are thin: they parse and validate the body, then call ``kernel.services``, which
checks RBAC again and owns every state change. Reads are open to any kernel role and to
``auditor``; configuration reads also to ``modules.admin`` (module hosts poll them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.pagination import Pagination
from aion.api.schema import page_parameters, paginated
from aion.api.views import APIView, GenericViewSet
from aion.auth.principal import Principal
from aion.problems import Problem
from aion.rbac import Role, RolePermission
from kernel import hosts, presenters, services
from kernel.api import serializers
from kernel.filtersets import ProposalFilterSet
from kernel.models import ConfigRevision, Proposal
from kernel.policy import LOADER, current_policy

CONFIG_READ_ROLES = services.READ_ROLES | {Role.MODULES_ADMIN}


class KernelPermission(RolePermission):
    """RolePermission, plus: safe methods are allowed to any role in the view's ``read_any_of``."""

    def has_permission(self, request: Any, view: Any) -> bool:
        read_any_of = getattr(view, "read_any_of", None)
        if request.method in SAFE_METHODS and read_any_of:
            user = request.user
            if user is None or not getattr(user, "is_authenticated", False):
                raise exceptions.NotAuthenticated()
            if set(getattr(user, "roles", ())) & {str(r) for r in read_any_of}:
                return True
        return super().has_permission(request, view)


def _principal(request: Any) -> Principal:
    return cast(Principal, request.user)


def proposal_response(proposal: Proposal, status: int = 200, *, detail: bool = False) -> Response:
    serializer = serializers.ProposalDetailSerializer if detail else serializers.ProposalSerializer
    return Response(serializer(proposal).data, status=status, headers={"ETag": presenters.proposal_etag(proposal)})


class ProposalPagination(Pagination):
    """Limit/offset, the COUNT only when the page does not tell it: a page that is neither full nor
    empty ends the list, so the count is its offset plus its length (the same answer, one query less)."""

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> list[Any] | None:
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.offset = self.get_offset(request)
        page = list(queryset[self.offset : self.offset + self.limit])
        self.count = self.offset + len(page) if 0 < len(page) < self.limit or not (page or self.offset) else self.get_count(queryset)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        return page


class ProposalViewSet(GenericViewSet):
    """Proposals: list, submit, read, and the transitions approve/reject/apply/rollback/break-glass."""

    queryset = Proposal.objects.all()
    permission_classes = [KernelPermission]
    read_any_of = services.READ_ROLES
    required_roles = {
        "list": Role.KERNEL_PROPOSER,
        "retrieve": Role.KERNEL_PROPOSER,
        "create": Role.KERNEL_PROPOSER,
        "breakglass_submit": Role.KERNEL_BREAKGLASS,
        "approve": Role.KERNEL_ADMIN,
        "reject": Role.KERNEL_ADMIN,
        "apply": Role.KERNEL_ADMIN,
        "rollback": Role.KERNEL_ADMIN,
        "breakglass": Role.KERNEL_BREAKGLASS,
        "*": Role.KERNEL_ADMIN,  # unmapped methods: authenticate first, then 405
    }
    filterset_class = ProposalFilterSet
    serializer_class = serializers.ProposalSerializer
    pagination_class = ProposalPagination
    rate_limit_class = None

    def get_object(self) -> Proposal:
        return services.get_proposal_for_tenant(_principal(self.request).tenant_id, self.kwargs.get("pk"))

    def _body(self, serializer_class: type, request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @staticmethod
    def _if_match(request: Request) -> str | None:
        return request.META.get("HTTP_IF_MATCH")

    def list(self, request: Request) -> Response:
        # Reads see expiry at once, even between two runs of the beat job.
        services.expire_proposals(tenant_id=_principal(request).tenant_id)
        rows = presenters.proposal_rows(_principal(request).tenant_id)
        if request.query_params.keys() & ProposalFilterSet.base_filters.keys():
            rows = self.filter_queryset(rows)  # building the filter set costs more than the page: only when asked
        page = self.paginate_queryset(rows)
        data = presenters.proposal_states(page if page is not None else rows)
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(responses=serializers.ProposalDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        proposal = services.expire_if_due(self.get_object())
        return proposal_response(proposal, detail=True)

    @extend_schema(request=serializers.ProposalCreateSerializer, responses={201: serializers.ProposalSerializer})
    def create(self, request: Request) -> Response:
        return self._submit(request, serializers.ProposalCreateSerializer)

    @extend_schema(
        request=serializers.BreakglassCreateSerializer,
        responses={201: serializers.ProposalSerializer},
        operation_id="v1_kernel_proposals_breakglass_submit",
    )
    def breakglass_submit(self, request: Request) -> Response:
        return self._submit(request, serializers.BreakglassCreateSerializer, breakglass=True)

    def _submit(self, request: Request, serializer_class: type, **options: Any) -> Response:
        """Submit the validated body as a proposal: 201 with its Location."""
        body = self._body(serializer_class, request)
        proposal = services.submit_proposal(_principal(request), **options, **body)
        response = proposal_response(proposal, status=201)
        response["Location"] = f"/v1/kernel/proposals/{proposal.pk}"
        return response

    @extend_schema(request=serializers.ApproveSerializer, responses=serializers.ProposalSerializer)
    def approve(self, request: Request, pk: str) -> Response:
        return self._decide(request, serializers.ApproveSerializer, services.approve_proposal, "comment")

    @extend_schema(request=serializers.ReasonSerializer, responses=serializers.ProposalSerializer)
    def reject(self, request: Request, pk: str) -> Response:
        return self._decide(request, serializers.ReasonSerializer, services.reject_proposal, "reason")

    @extend_schema(request=serializers.ApplySerializer, responses=serializers.ProposalSerializer)
    def apply(self, request: Request, pk: str) -> Response:
        proposal = self.get_object()
        if request.data and not isinstance(request.data, dict):
            raise Problem(400, "The body must be a JSON object (or empty).", slug="validation-error")
        self._body(serializers.ApplySerializer, request)  # apply takes no fields: any field is an error
        return proposal_response(services.apply_proposal(proposal, _principal(request), if_match=self._if_match(request)))

    @extend_schema(request=serializers.ReasonSerializer, responses=serializers.ProposalSerializer)
    def rollback(self, request: Request, pk: str) -> Response:
        return self._decide(request, serializers.ReasonSerializer, services.rollback_proposal, "reason")

    @extend_schema(request=serializers.BreakglassApproveSerializer, responses=serializers.ProposalSerializer)
    def breakglass(self, request: Request, pk: str) -> Response:
        return self._decide(request, serializers.BreakglassApproveSerializer, services.breakglass_approve, "justification")

    def _decide(self, request: Request, serializer_class: type, service: Callable[..., Proposal], field: str) -> Response:
        """Run SERVICE on the proposal with the body's FIELD (comment, reason...) and the caller's If-Match."""
        proposal = self.get_object()
        body = self._body(serializer_class, request)
        return proposal_response(service(proposal, _principal(request), **{field: body[field]}, if_match=self._if_match(request)))


def _known_scope(tenant_id: str, scope: str) -> bool:
    policy = current_policy()
    if policy is not None and scope in policy.scopes:
        return True
    return ConfigRevision.objects.for_tenant(tenant_id).filter(scope=scope).exists()


class ConfigReadView(APIView):
    """The access rule of the configuration reads: any read role, or modules.admin."""

    permission_classes = [KernelPermission]
    read_any_of = CONFIG_READ_ROLES
    required_role = Role.KERNEL_PROPOSER
    serializer_class = serializers.RevisionSerializer

    @staticmethod
    def unknown_scope(scope: str) -> Problem:
        return Problem(404, f"No configuration scope {scope!r}.", slug="not-found")


class ConfigView(ConfigReadView):
    """``GET /v1/kernel/config/{scope}``: the current revision, with an ETag (If-None-Match gets 304).

    ``?target=<pool>`` (or a kernel.agent's bound pool) answers with the document effective for that
    pool instead (``kernel.hosts.effective_config``; docs/kernel.md, "Hosts and rollout")."""

    read_any_of = CONFIG_READ_ROLES | {Role.KERNEL_AGENT}

    @extend_schema(
        responses={200: serializers.RevisionSerializer, 304: None},
        parameters=[
            OpenApiParameter("target", str, description="A pool: the document effective for its hosts (readers other than kernel.agent)"),
            OpenApiParameter("host", str, description="kernel.agent: its host name (the credential's binding wins)"),
            OpenApiParameter("pool", str, description="kernel.agent: its pool (the credential's binding wins)"),
        ],
    )
    def get(self, request: Request, scope: str) -> Response:
        tenant_id = _principal(request).tenant_id
        pool = hosts.config_pool(_principal(request), target=request.query_params.get("target"), pool=request.query_params.get("pool"))
        revision = services.current_revision(tenant_id, scope)
        if revision is None and not _known_scope(tenant_id, scope):
            raise self.unknown_scope(scope)
        if pool is not None:
            data = hosts.effective_config(tenant_id, scope, pool)
        else:
            data = presenters.revision_state(revision) if revision else presenters.empty_revision_state(scope)
        etag = presenters.revision_etag(tenant_id, scope if pool is None else f"{scope}@{pool}", data["revision"], data["sha256"])
        wanted = {tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",") if tag.strip()}
        if etag in wanted or f"W/{etag}" in wanted or "*" in wanted:
            return Response(status=304, headers={"ETag": etag})
        return Response(data, headers={"ETag": etag})


class RevisionListView(ConfigReadView):
    """``GET /v1/kernel/config/{scope}/revisions``: newest first, paginated."""

    @extend_schema(
        responses=paginated(serializers.RevisionSerializer, "PaginatedRevisionList"),
        parameters=page_parameters(),
        operation_id="v1_kernel_config_revisions_list",
    )
    def get(self, request: Request, scope: str) -> Response:
        tenant_id = _principal(request).tenant_id
        if not _known_scope(tenant_id, scope):
            raise self.unknown_scope(scope)
        queryset = ConfigRevision.objects.for_tenant(tenant_id).filter(scope=scope).select_related("parent").order_by("-number")
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([presenters.revision_state(r) for r in page or []])


class RevisionDetailView(ConfigReadView):
    """``GET /v1/kernel/config/{scope}/revisions/{n}``, with its ``rollout`` to the hosts."""

    @extend_schema(responses=serializers.RevisionDetailSerializer)
    def get(self, request: Request, scope: str, number: int) -> Response:
        tenant_id = _principal(request).tenant_id
        revision = ConfigRevision.objects.for_tenant(tenant_id).filter(scope=scope, number=number).select_related("parent").first()
        if revision is None:
            raise Problem(404, f"No revision {number} of scope {scope!r}.", slug="not-found")
        data = presenters.revision_state(revision)
        data["rollout"] = hosts.revision_rollout(tenant_id, scope, revision.number)  # issue 17: hosts converged / targeted
        return Response(data, headers={"ETag": presenters.revision_etag(revision.tenant_id, scope, revision.number, revision.sha256)})


class PolicyView(APIView):
    """``GET /v1/kernel/policy``: the guardrail policy in force and the loader's status."""

    permission_classes = [KernelPermission]
    read_any_of = services.READ_ROLES | {Role.KERNEL_AGENT}  # node agents refuse keys it does not allow (issue 17)
    required_role = Role.KERNEL_PROPOSER

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        policy = current_policy()
        return Response({"status": LOADER.health(), "policy": policy.raw if policy else None})
