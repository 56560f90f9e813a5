"""Settings of a test run: ``aion.settings`` plus the few defaults a test suite needs, so production settings carry
no test-only branch.

pytest selects this module (``aion.testing.pytest_env`` sets DJANGO_SETTINGS_MODULE), and the processes a test
starts inherit it through their environment (``aion.testing.processes.subprocess_env``). A test that must run the
production configuration sets ``DJANGO_SETTINGS_MODULE=aion.settings`` for its child. Explicit variables still win.
"""

from __future__ import annotations

from aion import env
from aion.settings import *  # noqa: F403
from aion.settings import AION_RATE_LIMIT_DEFAULTS, STORAGES

# Plain static storage: the manifest storage wants collectstatic, which a test run does not do.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# One process and one client IP serve a whole test run; tests of the limiter set their own limits.
AION_RATE_LIMITS = env.rate_limits(dict.fromkeys(AION_RATE_LIMIT_DEFAULTS, "1000000/60"))
# One synchronous write per log entry, so a test reads what a request logged as soon as it returns.
AION_LOG_FLUSH_SECONDS = env.decimal_number("AION_LOG_FLUSH_SECONDS", 0.0, minimum=0.0)
# Tests reset the database between cases: dry runs compare the active policy revision every time.
AION_ROUTER_POLICY_CHECK_SECONDS = env.decimal_number("AION_ROUTER_POLICY_CHECK_SECONDS", 0.0, minimum=0)
