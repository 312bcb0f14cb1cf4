"""Registering a run's model as a version, moving a version between stages, aliases. Each in one
transaction with its audit row."""

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.jobs import JobStatus
from apps.core.text import clean_name
from apps.projects.permissions import require_role

from ..exports import export_start
from ..models import (
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Stage,
    StageChange,
)
from ..notify import notify

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
EVERYONE = tuple(Role.values)
MANAGERS_AND_DS = (Role.MANAGER, Role.DATA_SCIENTIST)


def version_url(version):
    rm = version.registered_model
    return reverse("registry-version", args=[rm.project.slug, rm.pk, version.number])


def request_url(req):
    return reverse("registry-request", args=[req.version.registered_model.project.slug, req.pk])


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


def _set_stage(version, new, *, user, reason, request=None):
    """Move one version to ``new`` and record the change (history + audit). Caller holds the transaction."""
    old = version.stage
    now = timezone.now()
    # Compare-and-set on the old stage: two managers racing do not both move it.
    if ModelVersion.objects.filter(pk=version.pk, stage=old).update(stage=new, stage_changed_at=now) != 1:
        raise ValidationError(f"{version} changed stage meanwhile; reload and try again.")
    version.stage, version.stage_changed_at = new, now
    StageChange.objects.create(
        version=version, from_stage=old, to_stage=new, user=_user(user), reason=reason, request=request
    )
    audit_record(
        actor=user,
        action=f"model_version.stage.{new}",
        project=version.registered_model.project,
        obj=version,
        reason=reason,
        data={"from": old, "to": new, "request": request.pk if request else None},
    )


# Registering ----------------------------------------------------------------------------------------


@transaction.atomic
def model_version_register(*, run, registered_model_name, user, description=""):
    """Make a succeeded TrainingRun an immutable version of the registered model ``registered_model_name``
    (created on first use): classes, input spec, test metrics and artifacts (by sha256) are copied."""
    project = run.project
    require_role(user, project, Role.DATA_SCIENTIST)
    name = clean_name(registered_model_name)
    errors = {}
    if not NAME_RE.match(name):
        errors["registered_model_name"] = [
            "Name the model with 1-100 letters, digits, spaces, dots, dashes or underscores, starting with a letter "
            "or digit."
        ]
    if run.status != JobStatus.SUCCEEDED:
        errors["run"] = [f"{run} is {run.status}; only a succeeded run can be registered."]
    else:
        artifacts = {a.kind: a for a in run.artifacts.select_related("blob")}
        if "keras" not in artifacts:
            errors["run"] = [f"{run} has no keras artifact to register."]
        elif not run.test_metrics:
            errors["run"] = [f"{run} has no test-split evaluation to register."]
        else:
            for a in artifacts.values():
                if a.blob.sha256 != a.sha256:
                    errors["run"] = [f"{run}'s {a.kind} artifact's stored file does not match its sha256."]
    if errors:
        raise ValidationError(errors)
    rm, created = RegisteredModel.objects.get_or_create(
        project=project, name=name, defaults={"created_by": _user(user)}
    )
    rm = RegisteredModel.objects.select_for_update().get(pk=rm.pk)  # serialises version numbers
    if created:
        audit_record(actor=user, action="registered_model.create", project=project, obj=rm)
    earlier = rm.versions.filter(run=run).first()
    if earlier is not None:
        raise ValidationError({"run": [f"{run} is already registered as {earlier}."]})
    dv = run.dataset_version
    number = (rm.versions.aggregate(m=Max("number"))["m"] or 0) + 1
    config = run.config or {}
    input_spec = {
        "image_size": config.get("image_size"),
        "channels": config.get("channels", 1),
        "dtype": "float32",
        "value_range": [0, 255],
        "architecture": config.get("architecture", ""),
    }
    version = ModelVersion.objects.create(
        registered_model=rm,
        number=number,
        run=run,
        dataset_version=dv,
        description=description or "",
        classes=list(dv.classes),
        input_spec=input_spec,
        metrics=dict(run.test_metrics),
        artifacts={
            a.kind: {"blob_id": a.blob_id, "sha256": a.sha256, "size": a.size, "filename": a.filename}
            for a in artifacts.values()
        },
        created_by=_user(user),
    )
    audit_record(
        actor=user,
        action="model_version.register",
        project=project,
        obj=version,
        data={"run": run.pk, "dataset_version": dv.number, "accuracy": run.test_metrics.get("accuracy")},
    )
    notify(
        project=project,
        event="model_version.registered",
        obj=version,
        url=version_url(version),
        message=f"{user.username} registered {version} from {run} (dataset v{dv.number}).",
        roles=MANAGERS_AND_DS,
        data={"model": rm.name, "version": number},
    )

    export_start(version=version)  # ONNX and its parity report, by a worker; never blocks the registration
    return version


@transaction.atomic
def model_version_stage_set(*, version, stage, user, reason=""):
    """Staging or archived by hand. Production changes only by an approved promotion or a rollback."""
    project = version.registered_model.project
    require_role(user, project, Role.DATA_SCIENTIST, Role.MANAGER)
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if stage not in (Stage.NONE, Stage.STAGING, Stage.ARCHIVED):
        raise ValidationError(
            {
                "stage": [
                    f"stage must be none, staging or archived, not {stage!r}; production is "
                    "reached by an approved promotion request."
                ]
            }
        )
    if version.stage == Stage.PRODUCTION:
        raise ValidationError(
            {
                "stage": [
                    f"{version} is in production; it leaves production only when another "
                    "version is approved or a manager rolls back."
                ]
            }
        )
    if version.stage == stage:
        raise ValidationError({"stage": [f"{version} is already {stage}."]})
    _set_stage(version, stage, user=user, reason=reason)
    return version


@transaction.atomic
def model_alias_set(*, registered_model, name, version, user):
    require_role(user, registered_model.project, Role.DATA_SCIENTIST, Role.MANAGER)
    name = (name or "").strip().lower()
    if not ALIAS_RE.match(name) or name in (Stage.PRODUCTION, Stage.STAGING) or name.isdigit():
        raise ValidationError(
            {
                "name": [
                    f"{name!r} is not a usable alias: use 1-40 lowercase letters, digits, - or _, "
                    "starting with a letter, and not a stage name."
                ]
            }
        )
    if version.registered_model_id != registered_model.pk:
        raise ValidationError({"version": [f"{version} is not a version of {registered_model}."]})
    alias, _ = ModelAlias.objects.update_or_create(
        registered_model=registered_model, name=name, defaults={"version": version}
    )
    audit_record(
        actor=user,
        action="model_alias.set",
        project=registered_model.project,
        obj=version,
        data={"alias": name, "version": version.number},
    )
    return alias


@transaction.atomic
def model_alias_delete(*, registered_model, name, user):
    require_role(user, registered_model.project, Role.DATA_SCIENTIST, Role.MANAGER)
    deleted, _ = ModelAlias.objects.filter(registered_model=registered_model, name=name).delete()
    if not deleted:
        raise ValidationError({"name": [f"{registered_model} has no alias {name!r}."]})
    audit_record(
        actor=user,
        action="model_alias.delete",
        project=registered_model.project,
        obj=registered_model,
        data={"alias": name},
    )
