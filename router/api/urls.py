"""The router REST API (included at /v1/): /v1/router/... and /v1/tasks...; no trailing slashes."""

from django.urls import path

from router.api import views

task_list = views.TaskViewSet.as_view({"get": "list", "post": "create"})
task_detail = views.TaskViewSet.as_view({"get": "retrieve"})
task_cancel = views.TaskViewSet.as_view({"post": "cancel"})

urlpatterns = [
    path("router/policy", views.PolicyView.as_view(), name="router-policy"),
    path("router/policy/reload", views.PolicyReloadView.as_view(), name="router-policy-reload"),
    path("router/policy/rollback", views.PolicyRollbackView.as_view(), name="router-policy-rollback"),
    path("router/policy/revisions", views.PolicyRevisionsView.as_view(), name="router-policy-revisions"),
    path("router/policy/train", views.PolicyTrainView.as_view(), name="router-policy-train"),
    path("router/samples", views.SamplesView.as_view(), name="router-samples"),
    path("router/route", views.RouteDryRunView.as_view(), name="router-route"),
    path("router/targets", views.TargetsView.as_view(), name="router-targets"),
    path("tasks", task_list, name="task-list"),
    path("tasks/<uuid:pk>", task_detail, name="task-detail"),
    path("tasks/<uuid:pk>/cancel", task_cancel, name="task-cancel"),
    path("tasks/<uuid:pk>/events", views.TaskEventsView.as_view(), name="task-events"),
]
