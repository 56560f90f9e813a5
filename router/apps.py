"""Router and tasks: reloadable routing policies, routing decisions, task execution and runtime metrics."""

from django.apps import AppConfig


class Config(AppConfig):
    name = "router"
    label = "router"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aion.health import register_check
        from router.metrics import register_collector
        from router.services import policy_health

        register_collector()
        register_check("router_policy", policy_health)
