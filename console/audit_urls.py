"""Console audit pages (Gateway issue)."""

urlpatterns: list = []
