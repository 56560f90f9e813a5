"""Prometheus metrics of the hooks app (names fixed by the runbook and the contract)."""

from prometheus_client import Counter, Histogram

WEBHOOK_FAILURES = Counter("webhook_failures_total", "Outbound webhook deliveries that exhausted their attempts", ["endpoint", "tenant"])
WEBHOOK_ATTEMPTS = Counter("webhook_delivery_attempts_total", "Outbound webhook delivery attempts", ["outcome"])
WEBHOOK_LATENCY = Histogram(
    "webhook_delivery_duration_seconds",
    "Outbound webhook request latency",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HOOK_SIGNATURE_FAILURES = Counter("hook_signature_failures_total", "Inbound hooks that failed verification", ["reason"])
HOOK_APPROVALS = Counter("hook_approvals_total", "Verified inbound approval hooks", ["decision", "result"])
