from django.apps import AppConfig


class Config(AppConfig):
    name = "modules"
    label = "modules"
    default_auto_field = "django.db.models.BigAutoField"
