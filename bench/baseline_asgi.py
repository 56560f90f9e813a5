"""The baselines the gateway and the kernel are measured against: bare Django views, no middleware.

``bench/baseline_settings.py`` is the product's settings (same database, same pool) with no middleware
and two bare views:
  - ``GET /bare``: a JSON view with no middleware and no database (the gateway's baseline);
  - ``POST /bare-insert``: the same, plus one INSERT on the product's database (the kernel apply's).

Two ways to serve them, both with the same server and process count as the product:
  - ``uvicorn bench.baseline_asgi:application``: Django's own ASGI handler, how a bare Django view is
    served by an ASGI server (the issue's baseline);
  - ``uvicorn bench.baseline_asgi:same_path_application``: the product's HTTP path (``aion.asgi``: WSGI
    handler on a thread pool), a stricter baseline that isolates the middleware, DRF and our own code.
"""

from __future__ import annotations

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline_settings"

from django.core.asgi import get_asgi_application

application = get_asgi_application()


async def same_path_application(scope: dict, receive: object, send: object) -> None:
    from aion.asgi import application as product_path

    await product_path(scope, receive, send)  # type: ignore[arg-type]
