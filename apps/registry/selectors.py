from django.db.models import Count, Min, Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.core.jobs import JobStatus
from apps.core.stages import StageSpan, StageState
from apps.labeling.models import Annotation, ItemLabel
from apps.profiling.models import ProfileRun
from apps.training.models import TrainingRun

from .models import ModelVersion, Notification, PromotionRequest, RegisteredModel, RequestStatus, Stage, StageChange


def version_resolve(registered_model, ref=None):
    """The version named by ``ref``: None or "production" → the production version; a number
    ("3" or 3) → that version; "staging" → the newest staging version; anything else → an alias.
    Raises Http404 with a message saying what was not found."""
    versions = ModelVersion.objects.filter(registered_model=registered_model)
    if ref in (None, "", Stage.PRODUCTION):
        v = versions.filter(stage=Stage.PRODUCTION).first()
        if v is None:
            raise Http404(f"{registered_model.name} has no production version.")
        return v
    ref = str(ref)
    if ref.isdigit():
        v = versions.filter(number=int(ref)).first()
        if v is None:
            raise Http404(f"{registered_model.name} has no version {ref}.")
        return v
    if ref == Stage.STAGING:
        v = versions.filter(stage=Stage.STAGING).order_by("-number").first()
        if v is None:
            raise Http404(f"{registered_model.name} has no staging version.")
        return v
    v = versions.filter(aliases__name=ref).first()
    if v is None:
        raise Http404(f"{registered_model.name} has no version, stage or alias called {ref!r}.")
    return v


# Reads for the registry's pages and API (always scoped to a project the caller is a member of) ------


def models_of(project):
    return RegisteredModel.objects.filter(project=project).annotate(
        n_versions=Count("versions", distinct=True),
        n_open=Count(
            "versions__promotion_requests",
            filter=Q(versions__promotion_requests__status=RequestStatus.OPEN),
            distinct=True,
        ),
    )


def model_get(project, pk):
    return get_object_or_404(RegisteredModel, project=project, pk=pk)


def version_get(project, model_pk, number):
    return get_object_or_404(
        ModelVersion.objects.select_related("registered_model__project", "run", "dataset_version", "created_by"),
        registered_model__project=project,
        registered_model_id=model_pk,
        number=number,
    )


def production_of(registered_model):
    return ModelVersion.objects.filter(registered_model=registered_model, stage=Stage.PRODUCTION).first()


def requests_of(project, status=None):
    qs = (
        PromotionRequest.objects.filter(version__registered_model__project=project)
        .select_related("version__registered_model", "requested_by", "decided_by", "champion")
        .prefetch_related("approvals__user")
    )
    return qs.filter(status=status) if status else qs


def request_get(project, pk):
    return get_object_or_404(requests_of(project), pk=pk)


def registrable_runs(project):
    """Succeeded runs with a keras artifact (what a data scientist may register)."""

    return (
        TrainingRun.objects.filter(project=project, status=JobStatus.SUCCEEDED, artifacts__kind="keras")
        .select_related("dataset_version")
        .order_by("-id")
    )


def stage_history(version):
    return StageChange.objects.filter(version=version).select_related("user", "request")


def models_for_dataset_version(dataset_version):
    """Every registered version trained on ``dataset_version`` (lineage back from data to models)."""
    return (
        ModelVersion.objects.filter(dataset_version=dataset_version)
        .select_related("registered_model", "run")
        .order_by("registered_model__name", "-number")
    )


def lineage(version):
    """Run → hyperparameters → dataset version → profile and assertion results → labels and labelers."""

    run, dv = version.run, version.dataset_version
    profile = ProfileRun.objects.filter(version=dv, status="succeeded").order_by("-finished_at", "-id").first()
    results = list(profile.results.all()) if profile else []
    item_ids = dv.entries.values("item_id")
    labelers = list(
        ItemLabel.objects.filter(item_id__in=item_ids)
        .values("updated_by__username", "source")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    annotators = list(
        Annotation.objects.filter(item_id__in=item_ids)
        .values("user__username", "status")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    label_counts = list(dv.entries.values("label").annotate(n=Count("id")).order_by("label"))
    return {
        "run": run,
        "hyperparameters": sorted((run.config or {}).items()),
        "dataset_version": dv,
        "profile": profile,
        "assertions": results,
        "labelers": labelers,
        "annotators": annotators,
        "label_counts": label_counts,
    }


def unread_count(user):
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_of(user):
    return Notification.objects.filter(user=user).select_related("project")


def registry_stage_span(project):
    """The registry began with the first registered version and was done when a request to promote
    one was approved."""
    started = ModelVersion.objects.filter(registered_model__project=project).aggregate(t=Min("created_at"))["t"]
    done = PromotionRequest.objects.filter(
        version__registered_model__project=project, status=RequestStatus.APPROVED
    ).aggregate(t=Min("decided_at"))["t"]
    return StageSpan(started, done)


def registry_stage_state(project):

    open_n = PromotionRequest.objects.filter(
        version__registered_model__project=project, status=RequestStatus.OPEN
    ).count()
    prod = (
        ModelVersion.objects.filter(registered_model__project=project, stage=Stage.PRODUCTION)
        .select_related("registered_model")
        .order_by("registered_model__name")
    )
    in_prod = "; ".join(f"{v.registered_model.name} v{v.number} in production" for v in prod)
    if open_n:
        waiting = f"{open_n} request{'s' if open_n != 1 else ''} awaiting approval"
        return StageState("in_progress", f"{in_prod}; {waiting}" if in_prod else waiting)
    if prod:
        return StageState("done", in_prod)
    n = ModelVersion.objects.filter(registered_model__project=project).count()
    if n:
        return StageState("in_progress", f"{n} version{'s' if n != 1 else ''} registered, none in production")
    return StageState("not_started", "No model registered yet")


_canary_comparison = None


def register_canary_comparison(fn):
    """Serving, a later stage, registers at start how it compares a model's canary or shadow with
    production (``fn(registered_model)``); the registry never imports serving."""
    global _canary_comparison
    _canary_comparison = fn


def canary_comparison(registered_model):
    """The serving stage's canary/shadow comparison for the model, or None where serving offers none."""
    if _canary_comparison is None:
        return None
    try:
        return _canary_comparison(registered_model)
    except Exception:  # noqa: BLE001 - the promotion page must still render if serving has nothing to say
        return None
