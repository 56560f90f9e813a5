"""A test URLconf: the real routes plus probe endpoints (an API POST making a real, audited change; a Console page).

The probe lets the Gateway tests exercise rate limits and idempotency on an
unsafe route without depending on other apps' endpoints.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from aion import audit
from aion.api.views import APIView, ModelViewSet
from aion.models import ApiKey
from aion.rbac import Role, role_required


class ProbeView(APIView):
    required_role = Role.KERNEL_PROPOSER
    # Tests set this to hold a request "in flight".
    gate: threading.Event | None = None
    entered: threading.Event | None = None

    def post(self, request: Request) -> Response:
        if self.entered is not None:
            self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if isinstance(request.data, dict) and request.data.get("explode"):
            raise RuntimeError("probe asked to fail")
        principal: Any = request.user
        with transaction.atomic():
            entry = audit.record(
                "probe.created", "probe", uuid.uuid4().hex, actor=principal, tenant_id=principal.tenant_id, after={"body": request.data}
            )
        return Response({"audit_id": entry.pk, "echo": request.data}, status=201, headers={"Location": f"/v1/audit/{entry.pk}"})


class IngestProbeView(APIView):
    required_role = Role.MEMORY_WRITER
    rate_limit_class = "ingest"

    def post(self, request: Request) -> Response:
        return Response({"ok": True})


@role_required(Role.KERNEL_ADMIN)
def console_probe(request: HttpRequest) -> HttpResponse:
    """A Console page that changes nothing; tests post to it without the role."""
    return HttpResponse("ok")


class KeyNameSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "tenant_id"]
        read_only_fields = ["id", "tenant_id"]


class TenantKeyViewSet(ModelViewSet):
    """A writable tenant-owned resource (API key names) for the cross-tenant write tests."""

    required_role = Role.KERNEL_ADMIN
    queryset = ApiKey.objects.all()
    serializer_class = KeyNameSerializer


urlpatterns = [
    path("v1/test/keys/<int:pk>", TenantKeyViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})),
    path("v1/test/probe", ProbeView.as_view(), name="probe"),
    path("v1/test/ingest-probe", IngestProbeView.as_view(), name="ingest-probe"),
    path("console/test/probe", console_probe, name="console-probe"),
    path("", include("aion.urls")),
]
