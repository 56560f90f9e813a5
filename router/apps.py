from django.apps import AppConfig


class Config(AppConfig):
    name = "router"
    label = "router"
    default_auto_field = "django.db.models.BigAutoField"
