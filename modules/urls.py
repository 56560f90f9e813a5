"""Console pages of the modules app (included at /console/modules/)."""

from django.urls import path

from modules import views

app_name = "modules"
urlpatterns = [
    path("", views.index, name="index"),
    path("trusted-keys/", views.keys, name="keys"),
    path("<slug:name>/", views.detail, name="detail"),
    path("<slug:name>/rollback/", views.rollback, name="rollback"),
]
