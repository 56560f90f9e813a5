"""The baselines the gateway and the kernel are measured against: bare Django views, no middleware.

Served exactly like the product (same server, same process count, same database settings):
    uvicorn bench.baseline_asgi:application
  - ``GET /bare``: a JSON view with no middleware and no database (the gateway's baseline);
  - ``POST /bare-insert``: the same, plus one INSERT on the product's database (the kernel apply's).
"""

from __future__ import annotations

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.baseline_settings"

from django.core.asgi import get_asgi_application

application = get_asgi_application()
