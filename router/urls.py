"""Console pages of the router app (included at /console/router/)."""

from django.urls import path

from router import views

app_name = "router"
urlpatterns = [
    path("", views.index, name="index"),
    path("data.json", views.data, name="data"),
    path("reload", views.reload, name="reload"),
    path("rollback", views.rollback, name="rollback"),
]
