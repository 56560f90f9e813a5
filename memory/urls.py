"""Console pages of the memory app (mounted at /console/memory/)."""

from django.urls import path

from memory import views

app_name = "memory"
urlpatterns = [
    path("", views.index, name="index"),
    path("profiles/save", views.profile_save, name="profile-save"),
]
