"""Console pages of the modules app."""

from django.urls import path  # noqa: F401

app_name = "modules"
urlpatterns: list = []
