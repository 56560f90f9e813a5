"""Django admin: proposals, approvals and revisions are shown read-only (changes go through services)."""

from django.contrib import admin

from aion.admin import ReadOnlyAdmin
from kernel.models import Approval, ConfigRevision, ConfigScope, Host, HostScope, Proposal


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    readonly_fields = ("approver", "approver_kind", "roles", "comment", "content_hash", "breakglass", "created_at")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdmin):
    list_display = ("id", "tenant_id", "scope", "state", "proposer", "risk_score", "required_approvals", "created_at", "expires_at")
    list_filter = ("state", "scope", "breakglass")
    search_fields = ("id", "proposer", "tenant_id", "justification")
    inlines = [ApprovalInline]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("proposal", "approver", "breakglass", "created_at")
    search_fields = ("approver",)


@admin.register(ConfigRevision)
class ConfigRevisionAdmin(ReadOnlyAdmin):
    list_display = ("tenant_id", "scope", "number", "kind", "author", "sha256", "created_at")
    list_filter = ("scope", "kind")


@admin.register(ConfigScope)
class ConfigScopeAdmin(ReadOnlyAdmin):
    list_display = ("tenant_id", "scope", "current", "updated_at")


@admin.register(Host)
class HostAdmin(ReadOnlyAdmin):
    """Hosts as their node agents last reported them (issue 17); the live state is on /console/proposals/hosts/."""

    list_display = ("tenant_id", "name", "pool", "state", "agent_version", "last_report_at")
    list_filter = ("pool", "state")
    search_fields = ("name", "tenant_id")


@admin.register(HostScope)
class HostScopeAdmin(ReadOnlyAdmin):
    list_display = ("host", "scope", "revision", "reported_at")
    list_filter = ("scope",)
