"""Django admin for every router model (read-mostly: state changes go through router.services)."""

from django.contrib import admin

from router.models import PolicyRevision, PolicyState, RuntimeSample, Task


@admin.register(PolicyRevision)
class PolicyRevisionAdmin(admin.ModelAdmin):
    list_display = ("number", "sha256", "author", "source", "restored_from", "created_at")
    readonly_fields = [f.name for f in PolicyRevision._meta.fields]


@admin.register(PolicyState)
class PolicyStateAdmin(admin.ModelAdmin):
    list_display = ("active_number", "updated_at")
    readonly_fields = ("active_number", "updated_at")


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant_id", "intent", "status", "route", "target", "created_at")
    list_filter = ("status", "route", "tenant_id")
    search_fields = ("id", "intent", "target")
    readonly_fields = [f.name for f in Task._meta.fields]


@admin.register(RuntimeSample)
class RuntimeSampleAdmin(admin.ModelAdmin):
    list_display = ("created_at", "target", "route", "outcome", "latency_ms", "tokens", "cost_usd", "tenant_id")
    list_filter = ("outcome", "route", "target")
    readonly_fields = [f.name for f in RuntimeSample._meta.fields]
