"""Django admin for every hooks model (secrets stay encrypted and read-only)."""

from django.contrib import admin

from hooks.models import DeliveryAttempt, HookSource, HookSourceSecret, InboundDelivery, WebhookDelivery, WebhookEndpoint


class HookSourceSecretInline(admin.TabularInline):
    model = HookSourceSecret
    fields = ("fingerprint", "created_at", "expires_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(HookSource)
class HookSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant_id", "scopes", "service_identity", "enabled", "created_at")
    list_filter = ("enabled", "tenant_id")
    search_fields = ("name", "tenant_id")
    inlines = [HookSourceSecretInline]


@admin.register(HookSourceSecret)
class HookSourceSecretAdmin(admin.ModelAdmin):
    list_display = ("source", "fingerprint", "created_at", "expires_at")
    exclude = ("secret_encrypted",)
    readonly_fields = ("source", "fingerprint", "created_at")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "tenant_id", "enabled", "disabled_reason", "created_at")
    list_filter = ("enabled", "tenant_id")
    search_fields = ("url", "description")
    exclude = ("secret_encrypted", "previous_secret_encrypted")
    readonly_fields = ("secret_fingerprint", "previous_secret_expires_at")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "started_at", "status_code", "latency_ms", "succeeded", "error", "response_excerpt")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("delivery_id", "event_type", "endpoint", "status", "attempts", "next_attempt_at", "created_at")
    list_filter = ("status", "event_type", "tenant_id")
    search_fields = ("delivery_id", "event_id", "event_type")
    inlines = [DeliveryAttemptInline]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = ("delivery", "number", "status_code", "succeeded", "latency_ms", "started_at")
    list_filter = ("succeeded",)


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(admin.ModelAdmin):
    list_display = ("delivery_id", "tenant_id", "source_name", "completed", "response_status", "created_at", "expires_at")
    list_filter = ("completed", "tenant_id")
    search_fields = ("delivery_id",)
