"""Base views (tenant scoping so one tenant's ids are 404 to another), whoami and the audit log API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView as DRFAPIView

from aion.api.filtersets import AuditRecordFilterSet
from aion.api.serializers import AuditRecordSerializer
from aion.models import AuditRecord
from aion.roles import AUTHENTICATED, Role
from aion.tenancy import TenantQuerySet


class APIView(DRFAPIView):
    """Every API view: declare ``required_role`` or ``required_roles``."""

    rate_limit_class: str | None = None  # key into settings.AION_RATE_LIMITS; None = by method


class TenantScopedMixin:
    """Scopes the queryset to the caller's tenant (``TenantQuerySet.for_tenant``, aion/tenancy.py)."""

    request: Any

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()  # type: ignore[misc]
        tenant_id = self.request.user.tenant_id
        if isinstance(queryset, TenantQuerySet):
            return queryset.for_tenant(tenant_id)
        return queryset.filter(tenant_id=tenant_id)  # a model not yet on TenantOwned (kernel's, until it moves)


class GenericViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    rate_limit_class: str | None = None


class ReadOnlyModelViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    rate_limit_class: str | None = None


class ModelViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    rate_limit_class: str | None = None


class CreateListRetrieveViewSet(
    TenantScopedMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    rate_limit_class: str | None = None


class ListAPIView(TenantScopedMixin, generics.ListAPIView):
    rate_limit_class: str | None = None


class AuditRecordViewSet(ReadOnlyModelViewSet):
    """``GET /v1/audit`` and ``/v1/audit/{id}``: the caller's tenant's audit log (auditor), filtered by actor, action, resource, time."""

    required_role = Role.AUDITOR
    queryset = AuditRecord.objects.all()
    serializer_class = AuditRecordSerializer
    filterset_class = AuditRecordFilterSet


class WhoAmISerializer(serializers.Serializer):
    subject = serializers.CharField()
    kind = serializers.CharField()
    tenant_id = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class WhoAmIView(APIView):
    """GET /v1/whoami: the caller's principal as the server sees it."""

    required_role = AUTHENTICATED

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request: Request) -> Response:
        principal: Any = request.user
        return Response(
            {
                "subject": principal.subject,
                "kind": principal.kind,
                "tenant_id": principal.tenant_id,
                "roles": sorted(principal.roles),
            }
        )
