"""ASGI entry point: HTTP through Django, WebSockets through Channels (``<app>/routing.py``).

HTTP runs Django's WSGI handler on a bounded thread pool (a2wsgi), one hand-off per request. Django's
own ASGI handler crosses between the event loop and a fresh thread several times per request with sync
middleware (each ``process_view`` and the view itself), and starts a new thread, hence a new database
connection, for every request; measured in bench/api_overhead.py, the WSGI path serves 3-4x more. The
few views that stream from async iterators (``ASYNC_HTTP_PATHS``) keep Django's ASGI handler.
"""

import asyncio
import importlib
import os
import re
from collections.abc import Callable

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
django_asgi_app = get_asgi_application()

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402

from aion import context  # noqa: E402

django_wsgi_app = WSGIMiddleware(get_wsgi_application(), workers=settings.AION_WEB_THREADS)  # type: ignore[arg-type]

# Views returning StreamingHttpResponse over an async iterator (Server-Sent Events) stay on the ASGI handler,
# so a long-lived stream holds no pool thread.
ASYNC_HTTP_PATHS = re.compile(r"^/v1/tasks/[^/]+/events$")


async def http(scope: dict, receive: Callable, send: Callable) -> None:
    if context._server_loop is None:
        context.remember_server_loop(asyncio.get_running_loop())
    if ASYNC_HTTP_PATHS.match(scope["path"]):
        await django_asgi_app(scope, receive, send)
    else:
        await django_wsgi_app(scope, receive, send)  # type: ignore[arg-type]


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
        "http": http,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns()))),
        "lifespan": lifespan,
    }
)
