"""Console pages of the hooks app (included at /console/webhooks/)."""

from django.urls import path

from hooks import views

app_name = "hooks"
urlpatterns = [
    path("", views.index, name="index"),
    path("endpoints/<id:pk>/<str:action>", views.endpoint_action, name="endpoint-action"),
    path("deliveries/", views.deliveries, name="deliveries"),
    path("deliveries/export.csv", views.deliveries_export, name="deliveries-export"),
    path("deliveries/<id:pk>/redeliver", views.redeliver, name="redeliver"),
    path("deliveries/recover", views.recover, name="recover"),
    path("sources/", views.sources, name="sources"),
    path("sources/<id:pk>/<str:action>", views.source_action, name="source-action"),
    path("incidents/", views.incidents, name="incidents"),
]
