"""Console jobs pages (Operations issue): /console/jobs/ (URL name ``console:jobs``)."""

from django.urls import path

from console import jobs_views

urlpatterns = [
    path("", jobs_views.jobs, name="jobs"),
    path("runs/", jobs_views.runs_panel, name="jobs-runs"),
    path("runs/<id:pk>/", jobs_views.run_detail, name="jobs-run"),
    path("<str:name>/run/", jobs_views.run_now, name="jobs-run-now"),
]
