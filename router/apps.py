"""Router and tasks: reloadable routing policies, routing decisions, task execution and runtime metrics."""

from django.apps import AppConfig


class Config(AppConfig):
    name = "router"
    label = "router"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aion.health import register_check
        from router.metrics import register_collector

        def policy_health() -> dict:
            # Imported on first use: router.services pulls in DRF and the policy store, which a process
            # that never serves the router (the outbox relay, beat) should not pay for at start-up.
            from router.services import policy_health as check

            return check()

        register_collector()
        register_check("router_policy", policy_health)
