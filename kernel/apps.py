from django.apps import AppConfig


class Config(AppConfig):
    name = "kernel"
    label = "kernel"
    default_auto_field = "django.db.models.BigAutoField"
