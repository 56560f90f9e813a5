"""Console jobs pages (Operations issue)."""

urlpatterns: list = []
