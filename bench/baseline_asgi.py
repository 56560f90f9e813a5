"""The baselines the gateway and the kernel are measured against: bare Django views, no middleware.

Served exactly like the product: the same ASGI application object (``aion.asgi``: the same server,
HTTP path and thread pool), the same process count and database settings, but the settings of
``bench/baseline_settings.py`` (no middleware, two bare views):
    uvicorn bench.baseline_asgi:application
  - ``GET /bare``: a JSON view with no middleware and no database (the gateway's baseline);
  - ``POST /bare-insert``: the same, plus one INSERT on the product's database (the kernel apply's).
"""

from __future__ import annotations

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline_settings"

from aion.asgi import application

__all__ = ["application"]
