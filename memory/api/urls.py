"""Memory API routes (included at /v1/); the runbook's paths are exact."""

from django.urls import path

from memory.api import views

urlpatterns = [
    path("memory/ingest", views.IngestView.as_view(), name="memory-ingest"),
    path("memory/profile", views.ProfileView.as_view(), name="memory-profile"),
    path("memory/status", views.StatusView.as_view(), name="memory-status"),
    path("memory/uploads/<uuid:upload_id>/reprocess", views.ReprocessView.as_view(), name="memory-reprocess"),
    path("memory/search", views.SearchView.as_view(), name="memory-search"),
]
