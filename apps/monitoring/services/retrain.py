"""Retraining a model whose alert asked for it: a new version of the data, a run, its registration."""

from django.core.exceptions import ValidationError

from apps.core.audit import audit_record
from apps.core.jobs import JobStatus, QueueUnavailable
from apps.datasets.services import dataset_version_create
from apps.profiling.models import ProfileRun
from apps.profiling.services import profile_run_start
from apps.registry.models import ModelVersion, Stage
from apps.training.services import training_run_create

from ..models import (
    IncidentEvent,
    Retrain,
    RetrainStatus,
)

# Retraining -----------------------------------------------------------------------------------------


def _base_version(project):
    qs = ModelVersion.objects.filter(registered_model__project=project).select_related("run")
    return qs.filter(stage=Stage.PRODUCTION).order_by("-stage_changed_at", "-id").first() or qs.order_by("-id").first()


def retrain_start(*, project, alert=None, user=None):
    """A new dataset version of every labeled item (the newly labeled production inputs included),
    profiled for the data-quality gate; ``retrain_advance`` launches the run once the profile passes."""

    base = _base_version(project)
    note = f"Retraining after alert #{alert.pk}: {alert.title}" if alert else "Retraining requested from monitoring"
    version = dataset_version_create(
        project=project, user=user, name="Retraining", note=note[:500], seed=base.dataset_version.seed if base else 0
    )
    profile = profile_run_start(version=version, user=user)
    retrain = Retrain.objects.create(
        project=project, alert=alert, dataset_version=version, base_version=base, profile_run=profile
    )
    audit_record(
        actor=user,
        action="monitoring.retrain_start",
        project=project,
        obj=retrain,
        data={"dataset_version": version.number, "alert": alert.pk if alert else None},
    )
    if alert:
        IncidentEvent.objects.create(
            alert=alert,
            kind="retrain",
            message=(
                f"Dataset version v{version.number} frozen with {version.item_count} images "
                f"(production inputs labeled so far included); profiling it before training."
            ),
        )
    return retrain


def retrain_advance(*, retrain):
    """Launch the run when the new version's profile succeeded (it then goes through the usual
    promotion gate and approval like any run); record why when it cannot."""

    if retrain.status != RetrainStatus.PROFILING:
        return retrain
    profile = ProfileRun.objects.filter(pk=retrain.profile_run_id).first()
    if profile is None or profile.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        return _retrain_fail(retrain, f"The profile of v{retrain.dataset_version.number} did not succeed.")
    if profile.status != JobStatus.SUCCEEDED:
        return retrain
    config = dict(retrain.base_version.run.config) if retrain.base_version else None
    try:
        run = training_run_create(
            project=retrain.project,
            user=None,
            dataset_version=retrain.dataset_version,
            config=config,
            name=f"Retraining v{retrain.dataset_version.number}",
        )
    except ValidationError as exc:
        return _retrain_fail(retrain, "; ".join(exc.messages))
    except QueueUnavailable as exc:  # the run row is failed with the reason; so is the retraining
        return _retrain_fail(retrain, str(exc.detail))
    if Retrain.objects.filter(pk=retrain.pk, status=RetrainStatus.PROFILING).update(
        status=RetrainStatus.LAUNCHED, run=run
    ):
        if retrain.alert_id:
            IncidentEvent.objects.create(
                alert_id=retrain.alert_id,
                kind="retrain",
                data={"run": run.pk},
                message=(
                    f"Training run #{run.pk} launched on v{retrain.dataset_version.number}; register and promote it "
                    "through the registry's gate and approval as usual."
                ),
            )
    retrain.refresh_from_db()
    return retrain


def _retrain_fail(retrain, why):
    if Retrain.objects.filter(pk=retrain.pk, status=RetrainStatus.PROFILING).update(
        status=RetrainStatus.FAILED, error=why
    ):
        if retrain.alert_id:
            IncidentEvent.objects.create(
                alert_id=retrain.alert_id, kind="retrain", message=f"Retraining stopped: {why}"
            )
    retrain.refresh_from_db()
    return retrain
