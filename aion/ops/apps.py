from django.apps import AppConfig


class Config(AppConfig):
    name = "aion.ops"
    label = "ops"
    default_auto_field = "django.db.models.BigAutoField"
