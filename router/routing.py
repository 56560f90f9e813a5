"""Channels routes of the router app (collected by aion/asgi.py)."""

from django.urls import path

from router.consumers import TaskEventsConsumer

websocket_urlpatterns = [path("ws/tasks/<uuid:task_id>", TaskEventsConsumer.as_asgi())]
