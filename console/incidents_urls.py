"""Console security incidents (issue 14 §4): ``console:incidents`` lists every kind, ``console:incident-acknowledge``."""

from django.urls import path

from console import incidents_views

urlpatterns = [
    path("", incidents_views.incident_list, name="incidents"),
    path("<id:pk>/acknowledge", incidents_views.incident_acknowledge, name="incident-acknowledge"),
]
