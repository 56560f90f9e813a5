from django.contrib import admin

from aion.models import ApiKey, AuditRecord, OutboxEvent, OutboxRelayState, SecurityIncident, UserTenant, WorkerHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "tenant_id", "roles", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("name", "prefix", "tenant_id")


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "tenant_id", "action", "resource_type", "resource_id", "result")
    list_filter = ("action", "resource_type", "result")
    search_fields = ("actor", "resource_id", "request_id")


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "topic", "key", "event_type", "created_at", "published_at", "attempts")
    list_filter = ("topic",)


@admin.register(SecurityIncident)
class SecurityIncidentAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "reason", "tenant_id", "source_ip")
    list_filter = ("kind", "reason")


admin.site.register(UserTenant)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "seen_at")


@admin.register(OutboxRelayState)
class OutboxRelayStateAdmin(ReadOnlyAdmin):
    list_display = ("name", "holder", "lease_expires_at", "consecutive_failures", "next_attempt_at", "last_success_at")
