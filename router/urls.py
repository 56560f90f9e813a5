"""Console pages of the router app."""

from django.urls import path  # noqa: F401

app_name = "router"
urlpatterns: list = []
