from django.apps import AppConfig


class AionConfig(AppConfig):
    name = "aion"
    verbose_name = "AION platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import signal

        import aion.api.filters
        import aion.relay  # noqa: F401 - registers the outbox backlog gauges on /metrics
        from aion.auth import keys

        # SIGHUP re-reads AION_GATEWAY_API_KEYS (rotation without a restart).
        try:
            signal.signal(signal.SIGHUP, lambda *_: keys.reload_env_keys_safely())
        except ValueError:  # not the main thread (e.g. some test runners)
            pass
