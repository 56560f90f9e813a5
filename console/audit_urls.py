"""Console audit pages (Gateway issue): ``console:audit`` lists and filters, ``console:audit-detail`` shows a diff."""

from django.urls import path

from console import audit_views

urlpatterns = [
    path("", audit_views.audit_list, name="audit"),
    path("export.csv", audit_views.audit_export, name="audit-export"),
    path("<id:pk>/", audit_views.audit_detail, name="audit-detail"),
]
