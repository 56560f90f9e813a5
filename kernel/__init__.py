"""Kernel proposals: governed change of kernel and network configuration (proposals, approvals, revisions, rollback)."""
