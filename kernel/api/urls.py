"""Kernel API routes, included at /v1/ (full sub-paths, no trailing slashes)."""

from django.urls import path

from kernel.api import host_views, views

proposal_list = views.ProposalViewSet.as_view({"get": "list", "post": "create"})
proposal_detail = views.ProposalViewSet.as_view({"get": "retrieve"})


def _action(name: str):  # type: ignore[no-untyped-def]
    return views.ProposalViewSet.as_view({"post": name})


urlpatterns = [
    path("kernel/proposals", proposal_list, name="kernel-proposals"),
    path("kernel/proposals/breakglass", _action("breakglass_submit"), name="kernel-proposal-breakglass-submit"),
    path("kernel/proposals/<uuid:pk>", proposal_detail, name="kernel-proposal"),
    path("kernel/proposals/<uuid:pk>/approve", _action("approve"), name="kernel-proposal-approve"),
    path("kernel/proposals/<uuid:pk>/reject", _action("reject"), name="kernel-proposal-reject"),
    path("kernel/proposals/<uuid:pk>/apply", _action("apply"), name="kernel-proposal-apply"),
    path("kernel/proposals/<uuid:pk>/rollback", _action("rollback"), name="kernel-proposal-rollback"),
    path("kernel/proposals/<uuid:pk>/breakglass", _action("breakglass"), name="kernel-proposal-breakglass"),
    path("kernel/config/<str:scope>", views.ConfigView.as_view(), name="kernel-config"),
    path("kernel/config/<str:scope>/revisions", views.RevisionListView.as_view(), name="kernel-config-revisions"),
    path("kernel/config/<str:scope>/revisions/<id:number>", views.RevisionDetailView.as_view(), name="kernel-config-revision"),
    path("kernel/policy", views.PolicyView.as_view(), name="kernel-policy"),
    path("kernel/hosts", host_views.HostListView.as_view(), name="kernel-hosts"),
    path("kernel/hosts/<str:host>/report", host_views.HostReportView.as_view(), name="kernel-host-report"),
]
