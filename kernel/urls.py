"""Console pages of the kernel app, included at /console/proposals/ (``kernel:proposals`` is the nav entry)."""

from django.urls import include, path

from kernel import views

app_name = "kernel"

urlpatterns = [
    path("", views.proposals, name="proposals"),
    path("new/", views.proposal_new, name="proposal-new"),
    path("inbox/", views.inbox, name="inbox"),
    path("changes.json", views.changes, name="changes"),
    path("config/", views.config_index, name="config"),
    path("config/<str:scope>/", views.config_scope, name="config-scope"),
    path("hosts/", include("kernel.host_urls")),  # issue 17: hosts and the live rollout panels
    path("<uuid:proposal_id>/", views.proposal_detail, name="proposal"),
    path("<uuid:proposal_id>/rollback/", views.proposal_rollback, name="proposal-rollback"),
    path("<uuid:proposal_id>/<str:action>", views.proposal_action, name="proposal-action"),
]
