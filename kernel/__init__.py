"""Kernel proposals: governed change of kernel and network configuration (proposals, approvals, revisions, rollback),
and the hosts node agents report for (desired state per pool, observed state, drift and rollout; ``kernel.hosts``)."""
