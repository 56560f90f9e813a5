"""App config of the kernel app: registers the policy's /readyz check and the hosts' scrape-time gauges."""

from django.apps import AppConfig


class Config(AppConfig):
    name = "kernel"
    label = "kernel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aion.health import register_check
        from kernel.host_metrics import register_collector
        from kernel.policy import policy_health

        register_check("kernel_policy", policy_health)
        register_collector()
