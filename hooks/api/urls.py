"""Routes of the hooks API (included at /v1/; full sub-paths, no trailing slashes)."""

from django.urls import path

from hooks.api import views

endpoints = views.WebhookEndpointViewSet
deliveries = views.WebhookDeliveryViewSet
sources = views.HookSourceViewSet

urlpatterns = [
    path("hooks/approval", views.ApprovalHookView.as_view(), name="hooks-approval"),
    path("hooks/endpoints", endpoints.as_view({"get": "list", "post": "create"}), name="hooks-endpoint-list"),
    path(
        "hooks/endpoints/<id:pk>",
        endpoints.as_view({"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}),
        name="hooks-endpoint-detail",
    ),
    path("hooks/endpoints/<id:pk>/ping", endpoints.as_view({"post": "ping"}), name="hooks-endpoint-ping"),
    path("hooks/endpoints/<id:pk>/rotate-secret", endpoints.as_view({"post": "rotate_secret"}), name="hooks-endpoint-rotate"),
    path("hooks/deliveries", deliveries.as_view({"get": "list"}), name="hooks-delivery-list"),
    path("hooks/deliveries/recover", deliveries.as_view({"post": "recover"}), name="hooks-delivery-recover"),
    path("hooks/deliveries/<id:pk>", deliveries.as_view({"get": "retrieve"}), name="hooks-delivery-detail"),
    path("hooks/deliveries/<id:pk>/redeliver", deliveries.as_view({"post": "redeliver"}), name="hooks-delivery-redeliver"),
    path("hooks/sources", sources.as_view({"get": "list", "post": "create"}), name="hooks-source-list"),
    path("hooks/sources/<id:pk>", sources.as_view({"get": "retrieve", "patch": "partial_update"}), name="hooks-source-detail"),
    path("hooks/sources/<id:pk>/rotate-secret", sources.as_view({"post": "rotate_secret"}), name="hooks-source-rotate"),
]
