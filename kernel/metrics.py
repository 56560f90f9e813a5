"""Prometheus metrics of the kernel app (names fixed by the runbook and issue 4).

Counters are incremented after commit (``transaction.on_commit``) so a rolled-back
transition is never counted.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# One per transition into a state (pending on submission, applied, rolled_back, ...).
PROPOSALS_TOTAL = Counter("k_proposals_total", "Kernel proposal transitions, by the state entered", ["state"])
# The runbook's Grafana "Kernel" dashboard panel.
ROLLBACKS_TOTAL = Counter("k_rollbacks_total", "Kernel proposals rolled back", ["tenant", "scope"])
BREAKGLASS_TOTAL = Counter("k_breakglass_total", "Break-glass approvals and immediate applies", ["tenant", "scope"])
# Lead time from submission to approval and to apply.
PROPOSAL_LEAD_TIME = Histogram(
    "k_proposal_lead_time_seconds",
    "Seconds from a proposal's submission to its approval or apply",
    ["stage"],
    buckets=(1, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 7 * 24 * 3600),
)
