"""App config: registers the module metrics collector and the readiness checks."""

from django.apps import AppConfig


class Config(AppConfig):
    name = "modules"
    label = "modules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aion.health import register_check
        from modules import metrics
        from modules.checks import cosign_keys_check, module_hosts_check

        metrics.register_collector()
        register_check("cosign_keys", cosign_keys_check)
        register_check("module_hosts", module_hosts_check)
