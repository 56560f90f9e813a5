"""``/v1/security/incidents``: list, read and acknowledge security incidents (every kind, see ``aion.incidents``).

Reads need ``auditor``; acknowledging needs ``security.admin`` (``hooks.admin`` is accepted too: it
acknowledged hook incidents before this resource existed, and may still read what it acknowledges).
The caller sees its tenant's incidents, plus the platform tenant's when it is a platform admin.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from aion import incidents
from aion.api.filtersets import SecurityIncidentFilterSet
from aion.api.serializers import IncidentAcknowledgeSerializer, SecurityIncidentSerializer
from aion.models import SecurityIncident
from aion.rbac import Role, RolePermission

# Roles that may acknowledge (and so also read) incidents.
ACKNOWLEDGE_ROLES = frozenset({Role.SECURITY_ADMIN.value, Role.HOOKS_ADMIN.value})


class IncidentPermission(RolePermission):
    """RolePermission, plus: a holder of an ACKNOWLEDGE_ROLES role passes on every declared action."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        # ``action`` is set only for a method the route maps, so the 405 check of RolePermission is not skipped.
        if getattr(view, "action", None) in view.required_roles and getattr(user, "is_authenticated", False):
            if ACKNOWLEDGE_ROLES & set(getattr(user, "roles", ())):
                return True
        return super().has_permission(request, view)


@extend_schema_view(
    list=extend_schema(summary="List security incidents (the caller's tenant; platform admins also the platform tenant's)"),
    retrieve=extend_schema(summary="One security incident"),
)
class SecurityIncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    required_roles = {"list": Role.AUDITOR, "retrieve": Role.AUDITOR, "acknowledge": Role.SECURITY_ADMIN}
    permission_classes = [IncidentPermission]
    rate_limit_class: str | None = None
    serializer_class = SecurityIncidentSerializer
    filterset_class = SecurityIncidentFilterSet

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return SecurityIncident.objects.none()
        return incidents.visible_incidents(self.request.user)

    @extend_schema(
        summary="Acknowledge an incident with a note (idempotent: acknowledging again answers 200, unchanged)",
        description="Role `security.admin`, or `hooks.admin`.",
        request=IncidentAcknowledgeSerializer,
        responses={200: SecurityIncidentSerializer},
    )
    def acknowledge(self, request: Request, pk: int) -> Response:
        incident = self.get_object()
        body = IncidentAcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        incident, _ = incidents.acknowledge_incident(incident, actor=request.user, note=body.validated_data["note"])
        return Response(SecurityIncidentSerializer(incident).data)
