"""App config of the memory app: registers its scrape-time metrics."""

from django.apps import AppConfig


class Config(AppConfig):
    name = "memory"
    label = "memory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from memory.metrics import register_collector

        register_collector()
