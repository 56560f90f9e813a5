"""Router REST API: policy lifecycle and dry runs under /v1/router/, tasks under /v1/tasks.

Views stay thin: they validate input and call ``router.services``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import django_filters
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import renderers, status
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.filters import BoundedIsoDateTimeFilter
from aion.api.views import APIView, GenericViewSet, ListAPIView
from aion.problems import Problem
from aion.roles import Role
from router import promotion, services
from router.api.serializers import (
    DecisionSerializer,
    PolicyResponseSerializer,
    PolicyRevisionSerializer,
    ReloadInputSerializer,
    RevisionChangeSerializer,
    RevisionSubmitSerializer,
    RollbackInputSerializer,
    RouteInputSerializer,
    RuntimeSampleSerializer,
    TargetsResponseSerializer,
    TaskInputSerializer,
    TaskSerializer,
    TrainInputSerializer,
    TrainResponseSerializer,
)
from router.choices import TERMINAL_STATUSES
from router.filtersets import TaskFilterSet
from router.models import PolicyRevision, PolicyState, RuntimeSample, Task
from router.policy import parse_policy, read_policy_file
from router.policy_store import active_policy
from router.samples import parse_since, sample_dict, with_rule
from router.stats import runtime_view

_HISTORY_LIMIT = 50


def _tenant(request: Request) -> str:
    """The caller's tenant (request.user is an aion Principal behind RolePermission)."""
    return str(getattr(request.user, "tenant_id", ""))


def _revision_response(revision: Any, created: bool) -> Response:
    """The answer of reload and rollback: 201 with the new revision, 200 when nothing changed."""
    body = {"changed": created, "revision": PolicyRevisionSerializer(revision).data}
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _policy_payload() -> dict[str, Any]:
    active_number = PolicyState.objects.filter(pk=1).values_list("active_number", flat=True).first() or 0
    active = PolicyRevision.objects.filter(number=active_number).first()
    history = PolicyRevision.objects.order_by("-number")[:_HISTORY_LIMIT]
    return {
        "active": ({**PolicyRevisionSerializer(active).data, "content": active.content} if active else None),
        "history": [{k: v for k, v in PolicyRevisionSerializer(r).data.items() if k != "diff"} for r in history],
    }


class PolicyView(APIView):
    """GET /v1/router/policy: the active revision (with its content) and the history.

    A read stores nothing: with no revision yet, ``active`` is null (decisions use the file as
    revision 0) and an invalid file is a 400, as a reload of it would be.
    """

    required_role = Role.ROUTER_ADMIN

    @extend_schema(responses=PolicyResponseSerializer)
    def get(self, request: Request) -> Response:
        payload = _policy_payload()
        if payload["active"] is None:
            parse_policy(read_policy_file()[0])  # an invalid file is a PolicyInvalid (400), as a reload of it would be
        return Response(payload)


class PolicyReloadView(APIView):
    """POST /v1/router/policy/reload: re-read, validate, store and activate the policy file.

    With ``{"revision": N}``: activate the pending revision N (submitted by a training run) instead.
    """

    required_role = Role.ROUTER_ADMIN
    rate_limit_class = "write"

    @extend_schema(request=ReloadInputSerializer, responses={200: RevisionChangeSerializer, 201: RevisionChangeSerializer})
    def post(self, request: Request) -> Response:
        body = ReloadInputSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        if "revision" in body.validated_data:
            revision, created = promotion.activate_revision(body.validated_data["revision"], actor=request.user, tenant_id=_tenant(request))
            return _revision_response(revision, created)
        revision, created = services.reload_policy(actor=request.user, tenant_id=_tenant(request))
        return _revision_response(revision, created)


class PolicyRollbackView(APIView):
    """POST /v1/router/policy/rollback {revision}: re-activate an earlier revision as a new one."""

    required_role = Role.ROUTER_ADMIN
    rate_limit_class = "write"

    @extend_schema(request=RollbackInputSerializer, responses={200: RevisionChangeSerializer, 201: RevisionChangeSerializer})
    def post(self, request: Request) -> Response:
        serializer = RollbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        revision, created = services.rollback_policy(serializer.validated_data["revision"], actor=request.user, tenant_id=_tenant(request))
        return _revision_response(revision, created)


class PolicyRevisionsView(APIView):
    """POST /v1/router/policy/revisions {content, report}: store a policy document as a new pending revision.

    201 with the revision; 200 when the content equals the active or a pending revision (a retry). It
    becomes active with ``POST /v1/router/policy/reload {"revision": N}``.
    """

    required_role = Role.ROUTER_ADMIN
    rate_limit_class = "write"

    @extend_schema(request=RevisionSubmitSerializer, responses={200: RevisionChangeSerializer, 201: RevisionChangeSerializer})
    def post(self, request: Request) -> Response:
        body = RevisionSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        report = data.get("report")
        revision, created = promotion.submit_revision(
            data["content"], report=report if isinstance(report, dict) else None, actor=request.user, tenant_id=_tenant(request)
        )
        return _revision_response(revision, created)


class PolicyTrainView(APIView):
    """POST /v1/router/policy/train {since, until}: train a candidate on the samples and judge it; stores nothing."""

    required_role = Role.ROUTER_ADMIN
    rate_limit_class = "write"

    @extend_schema(request=TrainInputSerializer, responses=TrainResponseSerializer)
    def post(self, request: Request) -> Response:
        body = TrainInputSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        since = parse_since(body.validated_data["since"])
        until = parse_since(body.validated_data["until"], field="until") if body.validated_data.get("until") else None
        run = promotion.train_policy(since=since, until=until)
        result = run.result
        return Response({"decision": result.decision, "reason": result.reason, "candidate": result.candidate, "report": result.report})


class SampleFilterSet(django_filters.FilterSet):
    since = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="ISO 8601, inclusive")
    until = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="ISO 8601, exclusive")

    class Meta:
        model = RuntimeSample
        fields = ["since", "until"]


class SamplesView(ListAPIView):
    """GET /v1/router/samples?since=&until=: the caller's tenant's runtime samples, oldest first, paginated.

    Each sample carries its task's intent and rule (``chosen_by``): what the training groups by.
    """

    required_role = Role.ROUTER_ADMIN  # auditor reads through aion.rbac's read-only rule
    queryset = RuntimeSample.objects.all()
    serializer_class = RuntimeSampleSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = SampleFilterSet

    def get_queryset(self) -> Any:
        return with_rule(super().get_queryset())

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([sample_dict(sample) for sample in page or []])


class RouteDryRunView(APIView):
    """POST /v1/router/route: which target a task would go to, and why (nothing is called)."""

    required_role = Role.ROUTER_ADMIN

    @extend_schema(request=RouteInputSerializer, responses=DecisionSerializer)
    def post(self, request: Request) -> Response:
        serializer = RouteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        decision = services.route_task(dict(serializer.validated_data), tenant_id=_tenant(request))
        return Response(DecisionSerializer(decision.as_dict()).data)


class TargetsView(APIView):
    """GET /v1/router/targets: every target of the active policy with its rolling p50/p95/error rate."""

    required_role = Role.ROUTER_ADMIN

    @extend_schema(responses=TargetsResponseSerializer)
    def get(self, request: Request) -> Response:
        policy = active_policy()
        view = runtime_view(policy, _tenant(request))
        rows = []
        for target in [*policy.targets.values(), *view.registry]:
            stats = view.stats.get(target.name)
            rows.append(
                {
                    "name": target.name,
                    "kind": target.kind,
                    "route": target.route,
                    "price_per_1k_tokens": target.price_per_1k_tokens,
                    "health": target.health,
                    "p50_ms": stats.p50_ms if stats else None,
                    "p95_ms": stats.p95_ms if stats else None,
                    "error_rate": stats.error_rate if stats else None,
                    "samples": stats.samples if stats else 0,
                    "in_flight": view.in_flight.get(target.name, 0),
                }
            )
        cap = policy.daily_budget(_tenant(request))
        return Response(
            {"policy_revision": policy.revision, "targets": rows, "budget": {"daily_usd": cap, "spent_today_usd": view.spent_today_usd}}
        )


class TaskViewSet(GenericViewSet):
    """/v1/tasks: submit (202), list (filtered), retrieve and cancel the caller's tenant's tasks."""

    queryset = Task.objects.all()
    serializer_class = TaskSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = TaskFilterSet
    # router.admin submits and cancels (a task spends the tenant's budget; the contract has no narrower
    # role); auditor also reads list/retrieve through aion.rbac's read-only rule. See docs/router.md "Roles".
    # "*" also covers unmapped methods so they get 401/403, then 405.
    required_roles = {
        "list": Role.ROUTER_ADMIN,
        "retrieve": Role.ROUTER_ADMIN,
        "create": Role.ROUTER_ADMIN,
        "cancel": Role.ROUTER_ADMIN,
        "*": Role.ROUTER_ADMIN,
    }
    lookup_value_converter = "uuid"

    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(TaskSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(TaskSerializer(self.get_object()).data)

    @extend_schema(request=TaskInputSerializer, responses={202: TaskSerializer})
    def create(self, request: Request) -> Response:
        serializer = TaskInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        if len(key) > 200:
            raise Problem(400, "Idempotency-Key is too long (200 characters at most)", slug="bad-idempotency-key")
        task, created = services.submit_task(
            dict(serializer.validated_data), actor=request.user, tenant_id=_tenant(request), idempotency_key=key
        )
        headers = {"Location": f"/v1/tasks/{task.id}"}
        if not created:
            headers["Idempotent-Replay"] = "true"
        return Response(TaskSerializer(task).data, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        task = services.cancel_task(self.get_object(), actor=request.user)
        return Response(TaskSerializer(task).data)


class EventStreamRenderer(renderers.BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return json.dumps(data).encode()


def _sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def _load_state(task_id: Any) -> dict[str, Any] | None:
    task = Task.objects.filter(pk=task_id).first()
    return services.task_state(task) if task else None


async def task_event_stream(task_id: Any, *, max_seconds: float, poll_seconds: float) -> AsyncIterator[str]:
    """Status changes as SSE; ends at a terminal state or after MAX_SECONDS (the client may reconnect)."""
    deadline = time.monotonic() + max_seconds
    last: tuple[Any, ...] | None = None
    sent = 0
    yield "retry: 2000\n\n"
    while True:
        state = await sync_to_async(_load_state)(task_id)
        if state is None:
            yield _sse("gone", {"id": str(task_id)})
            return
        fingerprint = (state["status"], state["engine"]["target"])
        if fingerprint != last:
            sent += 1
            last = fingerprint
            yield _sse("status", state, sent)
        if state["status"] in TERMINAL_STATUSES:
            yield _sse("end", {"id": str(task_id), "status": state["status"]})
            return
        if time.monotonic() >= deadline:
            yield _sse("timeout", {"id": str(task_id), "status": state["status"], "max_seconds": max_seconds})
            return
        await asyncio.sleep(poll_seconds)


class TaskEventsView(APIView):
    """GET /v1/tasks/{id}/events: Server-Sent Events of the task's status changes."""

    required_role = Role.ROUTER_ADMIN
    renderer_classes = [renderers.JSONRenderer, EventStreamRenderer]

    @extend_schema(
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                inline_serializer(
                    "TaskServerSentEvent",
                    {
                        "id": drf_serializers.CharField(required=False),
                        "event": drf_serializers.ChoiceField(["status", "end", "timeout", "gone"]),
                        "data": drf_serializers.CharField(help_text="JSON: the task state (status) or {id, status}"),
                    },
                ),
                description="status, end, timeout or gone events",
            )
        }
    )
    def get(self, request: Request, pk: Any) -> StreamingHttpResponse:
        task = Task.objects.filter(pk=pk, tenant_id=_tenant(request)).only("id").first()
        if task is None:
            raise Problem(404, "no such task")
        response = StreamingHttpResponse(
            task_event_stream(
                task.pk, max_seconds=settings.AION_ROUTER_SSE_MAX_SECONDS, poll_seconds=settings.AION_ROUTER_SSE_POLL_SECONDS
            ),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
