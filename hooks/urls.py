"""Console pages of the hooks app."""

from django.urls import path  # noqa: F401

app_name = "hooks"
urlpatterns: list = []
