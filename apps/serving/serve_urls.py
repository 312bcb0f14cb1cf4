"""The serving process's URLs: the serving API at the same paths as on the web process (a client
changes only the host), plus health and readiness. No HTML pages here."""

from django.http import JsonResponse
from django.urls import include, path

from apps.core import health

from .engine import get_engine


def readyz(request):
    """200 once at least one production model is in memory; the pointers, for operators."""

    engine = get_engine()
    state = engine.state()
    loaded = [s for s in state.values() if s["production"]]
    sizes = [n for m in list(engine.models.values()) for n in m.batcher.batch_sizes]
    return health.not_ready_is_no_error(
        JsonResponse(
            {
                "status": "ready" if loaded else "no model loaded",
                "models": len(loaded),
                "swaps": engine.swaps,
                "recent_batch_sizes": sizes[-100:],
                "log": engine.writer.stats(),
            },
            status=200 if loaded else 503,
        )
    )


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", readyz, name="serving-readyz"),
    path("api/v1/", include("apps.serving.api_urls")),
]
