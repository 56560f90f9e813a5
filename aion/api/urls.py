from django.urls import path

from aion.auth.views import WhoAmIView

urlpatterns = [
    path("whoami", WhoAmIView.as_view(), name="whoami"),
]
