from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.urls import include, path
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from apps.accounts import api as accounts_api
from apps.accounts import views as accounts_views
from apps.core import health
from apps.training import backbone_views

api_v1 = [
    path("tokens/", accounts_api.TokenListCreate.as_view(), name="api-tokens"),
    path("backbones/", backbone_views.BackboneList.as_view(), name="api-backbones"),
    path("backbones/<str:name>/weights/", backbone_views.BackboneWeightsUpload.as_view(), name="api-backbone-weights"),
    path("", include("apps.projects.api_urls")),
    path("", include("apps.datasets.api_urls")),
    path("", include("apps.labeling.api_urls")),
    path("", include("apps.profiling.api_urls")),
    path("", include("apps.training.api_urls")),
    path("", include("apps.registry.api_urls")),
    path("", include("apps.monitoring.api_urls")),
    path("", include("apps.serving.api_urls")),
]

DOCS_CSP = csp_update({"worker-src": ["'self'", "blob:"]})


@method_decorator(DOCS_CSP, name="dispatch")
class DocsView(LoginRequiredMixin, SpectacularSwaggerSplitView):
    """The interactive API docs are a page for people: signed out, the login page, then back here.
    The split view serves Swagger UI's start-up script from this URL (?script): no inline script."""


@method_decorator(DOCS_CSP, name="dispatch")
class RedocView(LoginRequiredMixin, SpectacularRedocView):
    """As DocsView. ReDoc runs its search in a blob: worker: the two docs pages alone allow one (still no
    inline script). ReDoc's footer logo comes from cdn.redoc.ly: the policy refuses it (the portal
    loads nothing from a CDN)."""


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/tokens/", accounts_views.TokensView.as_view(), name="tokens"),
    path("account/tokens/<int:pk>/revoke/", accounts_views.TokenRevokeView.as_view(), name="token-revoke"),
    path("backbones/", backbone_views.BackbonesView.as_view(), name="backbones"),
    path("backbones/<str:name>/add/", backbone_views.BackboneAddView.as_view(), name="backbone-add"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("apps.projects.urls")),
    path("", include("apps.datasets.urls")),
    path("", include("apps.labeling.urls")),
    path("", include("apps.profiling.urls")),
    path("", include("apps.training.urls")),
    path("", include("apps.registry.urls")),
    path("", include("apps.monitoring.urls")),
    path("", include("apps.serving.urls")),
]

# A database that goes away under a middleware (session save, metrics) answers 503, not a 500 trace.
handler500 = "apps.core.middleware.server_error"
