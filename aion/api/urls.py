"""Platform API routes: whoami, the audit log and security incidents."""

from django.urls import path

from aion.api.incidents import SecurityIncidentViewSet
from aion.api.views import AuditRecordViewSet, WhoAmIView

urlpatterns = [
    path("whoami", WhoAmIView.as_view(), name="whoami"),
    path("audit", AuditRecordViewSet.as_view({"get": "list"}), name="audit-list"),
    path("audit/<id:pk>", AuditRecordViewSet.as_view({"get": "retrieve"}), name="audit-detail"),
    path("security/incidents", SecurityIncidentViewSet.as_view({"get": "list"}), name="security-incident-list"),
    path("security/incidents/<id:pk>", SecurityIncidentViewSet.as_view({"get": "retrieve"}), name="security-incident-detail"),
    path(
        "security/incidents/<id:pk>/acknowledge",
        SecurityIncidentViewSet.as_view({"post": "acknowledge"}),
        name="security-incident-acknowledge",
    ),
]
