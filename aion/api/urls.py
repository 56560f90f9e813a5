"""Platform API routes: whoami and the audit log."""

from django.urls import path

from aion.api.views import AuditRecordViewSet
from aion.auth.views import WhoAmIView

urlpatterns = [
    path("whoami", WhoAmIView.as_view(), name="whoami"),
    path("audit", AuditRecordViewSet.as_view({"get": "list"}), name="audit-list"),
    path("audit/<id:pk>", AuditRecordViewSet.as_view({"get": "retrieve"}), name="audit-detail"),
]
