"""ASGI entry point: HTTP through Django, WebSockets through Channels (``<app>/routing.py``)."""

import importlib
import os
from collections.abc import Callable

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402


def websocket_urlpatterns() -> list:
    patterns: list = []
    for app in ("console", "kernel", "memory", "modules", "router", "hooks"):
        try:
            module = importlib.import_module(f"{app}.routing")
        except ModuleNotFoundError:
            continue
        patterns.extend(getattr(module, "websocket_urlpatterns", []))
    return patterns


async def lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    """ASGI lifespan: on shutdown, write the buffered request logs (Django itself has no lifespan support)."""
    from asgiref.sync import sync_to_async

    from aion.ops.logstore import buffer

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await sync_to_async(buffer.flush, thread_sensitive=False)()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns()))),
        "lifespan": lifespan,
    }
)
