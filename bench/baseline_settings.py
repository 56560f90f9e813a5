"""The product's settings with no middleware and two bare views (see ``bench/baseline_asgi.py``)."""

from aion.settings import *  # noqa: F403

MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.baseline_urls"
