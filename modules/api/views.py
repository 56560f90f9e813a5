"""The /v1/modules API: register, list, read, activate and roll back module releases (role ``modules.admin``).

Views stay thin: every change is a ``modules.services`` call, whose errors become problems here.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from aion.api.etag import check_if_match, etag_for
from aion.api.schema import page_parameters, paginated
from aion.api.views import APIView, GenericViewSet
from aion.ratelimit import client_ip
from aion.roles import Role
from modules import services
from modules.api.parsers import TextYAMLParser, XYAMLParser, YAMLParser
from modules.api.serializers import (
    ActivateSerializer,
    ActivationSerializer,
    ModuleDetailSerializer,
    ModuleSerializer,
    ModuleVersionSerializer,
    RegisterSerializer,
    RollbackSerializer,
)
from modules.filtersets import ModuleFilterSet
from modules.models import Module
from modules.trust import load_keyring


def module_etag(module: Module) -> str:
    return etag_for({"name": module.name, "active": module.active_version_id, "enabled": module.enabled, "updated": str(module.updated_at)})


class ModuleViewSet(GenericViewSet):
    """``/v1/modules``, ``/v1/modules/{name}``, ``.../versions``, ``.../activate``, ``.../rollback``."""

    required_role = Role.MODULES_ADMIN  # auditor may read (RolePermission)
    queryset = Module.objects.select_related("active_version").order_by("name")
    serializer_class = ModuleSerializer
    filterset_class = ModuleFilterSet
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9-]+"
    parser_classes = [JSONParser, YAMLParser, XYAMLParser, TextYAMLParser]

    def get_serializer_class(self) -> Any:
        return {
            "retrieve": ModuleDetailSerializer,
            "create": RegisterSerializer,
            "activate": ActivateSerializer,
            "rollback": RollbackSerializer,
            "versions": ModuleVersionSerializer,
        }.get(self.action or "", ModuleSerializer)

    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = ModuleSerializer(page if page is not None else queryset, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, name: str) -> Response:
        module = self.get_object()
        return Response(ModuleDetailSerializer(module).data, headers={"ETag": module_etag(module)})

    def create(self, request: Request) -> Response:
        data: Any = request.data
        if isinstance(data, dict) and "__yaml_manifest__" in data:
            data = {
                "manifest": data["__yaml_manifest__"],
                "activate": request.query_params.get("activate", "false"),
                "reason": request.query_params.get("reason", ""),
            }
        body = RegisterSerializer(data=data)
        body.is_valid(raise_exception=True)
        principal: Any = request.user
        result = services.register_module(
            principal.tenant_id,
            body.validated_data["manifest"],
            actor=principal,
            activate=body.validated_data["activate"],
            reason=body.validated_data["reason"],
            source_ip=client_ip(request),
        )
        module = Module.objects.select_related("active_version").get(pk=result.version.module_id)
        payload = {
            "created": result.created,
            "activated": result.activated,
            "version": ModuleVersionSerializer(result.version).data,
            "module": ModuleSerializer(module).data,
        }
        headers = {"Location": f"/v1/modules/{module.name}"}
        return Response(payload, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK, headers=headers)

    @extend_schema(responses=paginated(ModuleVersionSerializer, "PaginatedModuleVersionList"), parameters=page_parameters())
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, name: str) -> Response:
        module = self.get_object()
        queryset: QuerySet[Any] = module.versions.select_related("module").order_by("-created_at", "-id")
        page = self.paginate_queryset(queryset)
        data = ModuleVersionSerializer(page if page is not None else queryset, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def _change(self, request: Request, serializer_class: Any, run: Any) -> Response:
        module = self.get_object()
        check_if_match(request, module_etag(module))
        body = serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        activation = run(module, body.validated_data)  # a ModuleActionError is a domain error: aion.problems maps it
        module.refresh_from_db()
        data = ModuleDetailSerializer(Module.objects.select_related("active_version").get(pk=module.pk)).data
        return Response(
            {
                "changed": activation is not None,
                "activation": ActivationSerializer(activation).data if activation else None,
                "module": data,
            },
            headers={"ETag": module_etag(module)},
        )

    @action(detail=True, methods=["post"])
    def activate(self, request: Request, name: str) -> Response:
        return self._change(
            request,
            ActivateSerializer,
            lambda module, data: services.activate_version(
                module, data["version"], actor=request.user, reason=data["reason"], source_ip=client_ip(request)
            ),
        )

    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, name: str) -> Response:
        return self._change(
            request,
            RollbackSerializer,
            lambda module, data: services.rollback_module(
                module, actor=request.user, version=data["version"] or None, reason=data["reason"], source_ip=client_ip(request)
            ),
        )


class TrustedKeysView(APIView):
    """``/v1/modules/trusted-keys``: the key-rotation report (keys, windows, and which modules each verifies)."""

    required_role = Role.MODULES_ADMIN

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        from modules.reports import key_rotation_report

        principal: Any = request.user
        return Response(key_rotation_report(principal.tenant_id, keyring=load_keyring()))
