"""Every state change of the hooks app, called by the API, the Console, Celery and the commands.

One module per concern; this package only re-exports their public names, so callers write
``from hooks import services; services.create_endpoint(...)``:

- ``sources``: inbound hook sources (create, rotate a secret, enable), DB or Vault held;
- ``inbound``: ``POST /v1/hooks/approval``: verify, validate, dedupe, call the Kernel;
- ``endpoints``: outbound endpoint CRUD, secret rotation and the test ping;
- ``delivery``: the delivery engine (outbox events to deliveries, lease, send, retry, recover).
"""

from hooks.services.delivery import (
    DELIVERY_BATCH_SIZE,
    close_pinned_clients,
    create_deliveries_for_event,
    deliver,
    deliver_batch,
    delivery_body,
    delivery_headers,
    due_delivery_ids,
    enqueue_deliveries,
    failures_per_hour,
    recover_failed,
    redeliver,
)
from hooks.services.endpoints import create_endpoint, delete_endpoint, rotate_endpoint_secret, send_test_ping, update_endpoint
from hooks.services.inbound import HookResponse, receive_approval_hook, verify_inbound
from hooks.services.sources import create_hook_source, rotate_hook_source_secret, set_hook_source_enabled

__all__ = [
    "DELIVERY_BATCH_SIZE",
    "HookResponse",
    "close_pinned_clients",
    "create_deliveries_for_event",
    "create_endpoint",
    "create_hook_source",
    "delete_endpoint",
    "deliver",
    "deliver_batch",
    "delivery_body",
    "delivery_headers",
    "due_delivery_ids",
    "enqueue_deliveries",
    "failures_per_hour",
    "receive_approval_hook",
    "recover_failed",
    "redeliver",
    "rotate_endpoint_secret",
    "rotate_hook_source_secret",
    "send_test_ping",
    "set_hook_source_enabled",
    "update_endpoint",
    "verify_inbound",
]
