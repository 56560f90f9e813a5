from django.apps import AppConfig


class Config(AppConfig):
    name = "console"
    label = "console"
    default_auto_field = "django.db.models.BigAutoField"
