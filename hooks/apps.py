from django.apps import AppConfig


class Config(AppConfig):
    name = "hooks"
    label = "hooks"
    default_auto_field = "django.db.models.BigAutoField"
