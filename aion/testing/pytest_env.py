"""Loaded with ``-p`` before Django starts: test defaults for the environment.

The run uses ``aion.settings_test`` (production settings plus the test defaults), and so do the processes it
starts, which inherit this environment. Every test run gets its own AION_VAR_DIR (SQLite, broker, files, Qdrant),
so parallel runs never share embedded state; it is made here, as the run command makes it for a server.
"""

import os
import tempfile
from pathlib import Path

# Assigned, not defaulted: importing this module imported the ``aion`` package, whose Celery app (aion/celery.py)
# already defaulted DJANGO_SETTINGS_MODULE to the production module.
os.environ["DJANGO_SETTINGS_MODULE"] = "aion.settings_test"
os.environ.setdefault("AION_VAR_DIR", tempfile.mkdtemp(prefix="aion-test-"))
# STATIC_ROOT, which WhiteNoise serves (collectstatic makes it for a server).
(Path(os.environ["AION_VAR_DIR"]) / "static").mkdir(parents=True, exist_ok=True)
# Env keys are parsed per test where needed; none leak in from the developer's shell.
os.environ.setdefault("AION_GATEWAY_API_KEYS", "")
