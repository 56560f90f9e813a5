"""Console pages of the kernel app."""

from django.urls import path  # noqa: F401

app_name = "kernel"
urlpatterns: list = []
