"""Serving's reads, scoped to a project the caller is a member of (views resolve the project first)."""

import datetime as dt
from collections import Counter

import numpy as np
from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone

from apps.core.stages import StageSpan, StageState
from apps.registry.models import ModelVersion, RegisteredModel, Stage, StageChange

from .models import PredictionLog, ProjectToken, RouteMode, ServingRoute

COMPARE_ROWS = 20_000  # the newest rows of the window compared (enough for stable shares, cheap to read)


def tokens_of(project):
    return ProjectToken.objects.filter(project=project).select_related("created_by", "revoked_by")


def token_get(project, pk):
    from django.shortcuts import get_object_or_404

    return get_object_or_404(ProjectToken, project=project, pk=pk)


def servable_models(project):
    """Registered models with their production version (None when there is none) and route."""
    out = []
    for rm in RegisteredModel.objects.filter(project=project).order_by("name"):
        out.append(
            {
                "model": rm,
                "production": ModelVersion.objects.filter(registered_model=rm, stage=Stage.PRODUCTION).first(),
                "staging": list(ModelVersion.objects.filter(registered_model=rm, stage=Stage.STAGING)),
                "route": ServingRoute.objects.filter(registered_model=rm).select_related("candidate").first(),
            }
        )
    return out


def model_by_ref(project, ref):
    """A registered model of ``project`` by id or by name (Http404 naming it otherwise)."""
    from django.http import Http404

    qs = RegisteredModel.objects.filter(project=project)
    rm = qs.filter(pk=int(ref)).first() if str(ref).isdigit() else None
    rm = rm or qs.filter(name=ref).first()
    if rm is None:
        raise Http404(f"No registered model {ref!r} in this project.")
    return rm


def recent_predictions(project, *, limit=50, registered_model=None):
    qs = PredictionLog.objects.filter(project=project).select_related("model_version", "registered_model")
    if registered_model is not None:
        qs = qs.filter(registered_model=registered_model)
    return qs.order_by("-created_at", "-id")[:limit]


def _side(rows, version, classes):
    if not rows:
        return {"version": version.number if version else None, "n": 0}
    lat = np.array([r["latency_ms"] for r in rows], dtype=np.float64)
    conf = np.array([r["confidence"] for r in rows], dtype=np.float64)
    counts = dict.fromkeys(classes, 0)
    for r in rows:
        counts[r["predicted_class"]] = counts.get(r["predicted_class"], 0) + 1
    return {
        "version": version.number if version else None,
        "n": len(rows),
        "class_shares": {c: n / len(rows) for c, n in counts.items()},
        "mean_confidence": float(conf.mean()),
        "low_confidence_share": float((conf < settings.SERVING_LOW_CONFIDENCE).mean()),
        "latency_p50_ms": float(np.percentile(lat, 50)),
        "latency_p99_ms": float(np.percentile(lat, 99)),
    }


def canary_comparison(registered_model, *, hours=24):
    """Production beside the canary/shadow candidate over the last ``hours``: predictions, class shares,
    confidence, latency p50/p99 and (shadow: the same inputs) agreement. None when nothing was routed."""
    route = ServingRoute.objects.filter(registered_model=registered_model).select_related("candidate").first()
    since = timezone.now() - dt.timedelta(hours=hours)
    base = PredictionLog.objects.filter(registered_model=registered_model, created_at__gte=since)
    routed = base.filter(route__in=[RouteMode.CANARY, RouteMode.SHADOW])
    candidate = route.candidate if route and route.mode != RouteMode.OFF else None
    if candidate is None:
        last = routed.order_by("-created_at").values("model_version").first()
        if last is None:
            return None
        candidate = ModelVersion.objects.get(pk=last["model_version"])
    fields = ("model_version_id", "route", "request_id", "batch_index", "predicted_class", "confidence", "latency_ms")
    cand_rows = list(routed.filter(model_version=candidate).order_by("-created_at").values(*fields)[:COMPARE_ROWS])
    prod_rows = list(base.filter(route="production").order_by("-created_at").values(*fields)[:COMPARE_ROWS])
    prod_version_ids = {r["model_version_id"] for r in prod_rows}
    production = ModelVersion.objects.filter(registered_model=registered_model, stage=Stage.PRODUCTION).first() or (
        ModelVersion.objects.filter(pk__in=prod_version_ids).order_by("-number").first()
    )
    if production is not None:
        prod_rows = [r for r in prod_rows if r["model_version_id"] == production.pk]
    classes = list(candidate.classes)
    shadow = [r for r in cand_rows if r["route"] == RouteMode.SHADOW]
    answered = {(r["request_id"], r["batch_index"]): r["predicted_class"] for r in prod_rows}
    pairs = [
        (answered[(r["request_id"], r["batch_index"])], r["predicted_class"])
        for r in shadow
        if (r["request_id"], r["batch_index"]) in answered
    ]
    return {
        "mode": route.mode if route else RouteMode.OFF,
        "mode_label": route.get_mode_display() if route else RouteMode.OFF.label,
        "share": route.canary_share if route else None,
        "hours": hours,
        "classes": classes,
        "production": _side(prod_rows, production, classes),
        "candidate": _side(cand_rows, candidate, classes),
        "pairs": len(pairs),
        "agreement": (sum(a == b for a, b in pairs) / len(pairs)) if pairs else None,
        # Which way they disagree: {(production class, candidate class): count}, largest first.
        "disagreements": [
            {"production": a, "candidate": b, "n": n}
            for (a, b), n in Counter((a, b) for a, b in pairs if a != b).most_common()
        ],
    }


def last_prediction_at(project):
    return PredictionLog.objects.filter(project=project).aggregate(t=Max("created_at"))["t"]


def serving_stage_span(project):
    """Serving began when a model first went to production and was done with its first answer."""
    started = StageChange.objects.filter(
        version__registered_model__project=project, to_stage=Stage.PRODUCTION
    ).aggregate(t=Min("created_at"))["t"]
    first = PredictionLog.objects.filter(project=project).aggregate(t=Min("created_at"))["t"]
    return StageSpan(started or first, first)


def serving_stage_state(project):

    prod = ModelVersion.objects.filter(registered_model__project=project, stage=Stage.PRODUCTION).count()
    if not prod:
        return StageState("not_started", "No model in production to serve")
    n = PredictionLog.objects.filter(project=project, created_at__gte=timezone.now() - dt.timedelta(days=1)).count()
    routed = ServingRoute.objects.filter(registered_model__project=project).exclude(mode=RouteMode.OFF).count()
    extra = f"; {routed} canary/shadow route{'s' if routed != 1 else ''}" if routed else ""
    return StageState("done" if n else "in_progress", f"{n} prediction{'s' if n != 1 else ''} in the last day{extra}")
