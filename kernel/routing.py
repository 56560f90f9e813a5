"""WebSocket routes of the kernel app (collected by aion.asgi)."""

from django.urls import path

from kernel.consumers import ProposalUpdatesConsumer

websocket_urlpatterns = [
    path("ws/kernel/proposals", ProposalUpdatesConsumer.as_asgi()),
]
