"""Console audit pages (Gateway issue): ``console:audit`` lists and filters, ``console:audit-detail`` shows a diff."""

from django.urls import path

from console import audit_views

urlpatterns = [
    path("", audit_views.audit_list, name="audit"),
    path("<id:pk>/", audit_views.audit_detail, name="audit-detail"),
]
