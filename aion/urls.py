"""Top-level routes: health, metrics, schema, the Console, admin and every app's /v1 API."""

from collections.abc import Callable

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from aion.auth.views import jwks_view
from aion.health import healthz, readyz
from aion.metrics import metrics_view
from aion.roles import PUBLIC


class SchemaView(SpectacularAPIView):
    """GET /api/schema/: the OpenAPI document (public; its errors are problem JSON like every route's)."""

    required_role = PUBLIC


class DocsView(SpectacularSwaggerView):
    """GET /api/docs/: Swagger UI over the schema (public)."""

    required_role = PUBLIC


def platform_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET and HEAD only (others get a 405 problem with Allow); read-only, so no CSRF check stands in front of that 405."""
    return csrf_exempt(require_safe(view))


urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False), name="root"),
    # Platform routes are plain Django views: GET and HEAD only (other methods get a 405 problem with Allow).
    path("healthz", platform_view(healthz), name="healthz"),
    path("readyz", platform_view(readyz), name="readyz"),
    path("metrics", platform_view(metrics_view), name="metrics"),
    path(".well-known/jwks.json", platform_view(jwks_view), name="jwks"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    # App Console pages at top level too, so the nav's "hooks:index" style names resolve (nested under "console:" they do not).
    path("console/webhooks/", include("hooks.urls")),
    path("console/proposals/", include("kernel.urls")),
    path("console/", include("console.urls")),
    path("v1/", include("aion.api.urls")),
    path("v1/", include("kernel.api.urls")),
    path("v1/", include("hooks.api.urls")),
    path("v1/", include("memory.api.urls")),
    path("v1/", include("router.api.urls")),
    path("v1/", include("modules.api.urls")),
]

handler400 = "aion.problems.handler400"
handler403 = "aion.problems.handler403"
handler404 = "aion.problems.handler404"
handler500 = "aion.problems.handler500"
