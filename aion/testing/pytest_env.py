"""Loaded with ``-p`` before Django starts: test defaults for the environment.

Every test run gets its own AION_VAR_DIR (SQLite, broker, files, Qdrant), so
parallel runs never share embedded state.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
os.environ.setdefault("AION_TESTING", "1")
os.environ.setdefault("AION_VAR_DIR", tempfile.mkdtemp(prefix="aion-test-"))
# Env keys are parsed per test where needed; none leak in from the developer's shell.
os.environ.setdefault("AION_GATEWAY_API_KEYS", "")
