"""Console routes: the shell here, each app's pages under its own prefix."""

from django.urls import include, path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.ConsoleLoginView.as_view(), name="login"),
    path("logout/", views.ConsoleLogoutView.as_view(), name="logout"),
    path("status.json", views.status_json, name="status-json"),
    path("audit/", include("console.audit_urls")),
    path("security/incidents/", include("console.incidents_urls")),
    path("jobs/", include("console.jobs_urls")),
    path("proposals/", include("kernel.urls")),
    path("webhooks/", include("hooks.urls")),
    path("memory/", include("memory.urls")),
    path("router/", include("router.urls")),
    path("modules/", include("modules.urls")),
]
