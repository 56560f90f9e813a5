"""App config: connects outbound webhooks to the outbox and registers the readiness check."""

from django.apps import AppConfig


class Config(AppConfig):
    name = "hooks"
    label = "hooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aion.health import register_check
        from aion.outbox import event_published
        from hooks import tasks  # noqa: F401 - registers the Celery tasks
        from hooks.health import check_webhooks
        from hooks.services import create_deliveries_for_event

        event_published.connect(create_deliveries_for_event, dispatch_uid="hooks.create_deliveries_for_event")
        register_check("webhooks", check_webhooks)
