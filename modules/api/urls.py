"""/v1/modules routes (full sub-paths, no trailing slashes)."""

from django.urls import path

from modules.api.views import ModuleViewSet, TrustedKeysView

module_list = ModuleViewSet.as_view({"get": "list", "post": "create"})
module_detail = ModuleViewSet.as_view({"get": "retrieve"})
module_versions = ModuleViewSet.as_view({"get": "versions"})
module_activate = ModuleViewSet.as_view({"post": "activate"})
module_rollback = ModuleViewSet.as_view({"post": "rollback"})

urlpatterns = [
    path("modules", module_list, name="modules-list"),
    path("modules/trusted-keys", TrustedKeysView.as_view(), name="modules-trusted-keys"),
    path("modules/<slug:name>", module_detail, name="modules-detail"),
    path("modules/<slug:name>/versions", module_versions, name="modules-versions"),
    path("modules/<slug:name>/activate", module_activate, name="modules-activate"),
    path("modules/<slug:name>/rollback", module_rollback, name="modules-rollback"),
]
