"""Console pages of hosts and rollout, included by ``kernel.urls`` at /console/proposals/hosts/ (namespace ``kernel``)."""

from django.urls import path

from kernel import host_views

urlpatterns = [
    path("", host_views.hosts_page, name="hosts"),
    path("rollout/proposal/<uuid:proposal_id>/", host_views.proposal_rollout, name="rollout-proposal"),
    path("rollout/scope/<str:scope>/", host_views.scope_rollout, name="rollout-scope"),
]
