"""Django admin for the modules app: read-mostly views (changes go through services.py)."""

from django.contrib import admin

from modules.models import Module, ModuleActivation, ModuleHealthCheck, ModuleVersion


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant_id", "active_version", "enabled", "health", "flap_count", "health_checked_at")
    list_filter = ("tenant_id", "enabled", "health")
    search_fields = ("name",)
    readonly_fields = [f.name for f in Module._meta.fields]


@admin.register(ModuleVersion)
class ModuleVersionAdmin(admin.ModelAdmin):
    list_display = ("module", "version", "tenant_id", "pool", "signature_key_id", "created_at")
    list_filter = ("tenant_id", "pool", "signature_key_id")
    search_fields = ("module__name", "version", "image")
    readonly_fields = [f.name for f in ModuleVersion._meta.fields]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # versions are immutable

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ModuleActivation)
class ModuleActivationAdmin(admin.ModelAdmin):
    list_display = ("module", "action", "from_version", "to_version", "actor", "created_at")
    list_filter = ("tenant_id", "action")
    readonly_fields = [f.name for f in ModuleActivation._meta.fields]


@admin.register(ModuleHealthCheck)
class ModuleHealthCheckAdmin(admin.ModelAdmin):
    list_display = ("module", "version", "outcome", "status_after", "http_status", "latency_ms", "checked_at")
    list_filter = ("tenant_id", "outcome", "status_after")
    readonly_fields = [f.name for f in ModuleHealthCheck._meta.fields]
