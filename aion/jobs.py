"""The job runner under the name every app's ``tasks.py`` uses: ``@scheduled_job`` (see ``aion.ops.jobs``).

The runner lives in ``aion.ops`` with the ``ops.JobRun`` rows it writes; this name keeps the apps'
imports short and keeps ``aion.ops`` free of imports back out to here (no package circle).
"""

from aion.ops.jobs import REGISTRY, discover, run_registered, scheduled_job

__all__ = ["REGISTRY", "discover", "run_registered", "scheduled_job"]
