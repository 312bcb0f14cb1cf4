"""Every write of the registry: register versions, move stages, aliases, promotion requests and
their decisions, rollback, settings and webhooks. Each runs in one transaction and writes the audit log."""

import re
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.jobs import JobStatus
from apps.core.text import clean_name
from apps.projects.permissions import require_role

from . import gate as gates
from .models import (
    Approval,
    ModelAlias,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    RequestStatus,
    Stage,
    StageChange,
    Webhook,
)
from .notify import notify

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
    from .exports import export_start

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


# Promotion ------------------------------------------------------------------------------------------


def promotion_request_create(*, version, user, note=""):
    """Ask for ``version`` to go to production. The gate runs now and its results are stored on the
    request; a request whose gate fails is closed at once (rejected by the gate) with every failure."""
    project = version.registered_model.project
    require_role(user, project, Role.DATA_SCIENTIST)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": ["Say why this version should go to production (the note is required)."]})
    if version.stage in (Stage.PRODUCTION, Stage.ARCHIVED):
        raise ValidationError(
            {
                "version": [
                    f"{version} is {version.stage}; only a version in none or staging can be "
                    "promoted (roll back to return an archived version)."
                ]
            }
        )
    if PromotionRequest.objects.filter(version=version, status=RequestStatus.OPEN, gate_passed=True).exists():
        raise ValidationError({"version": [f"{version} already has an open promotion request."]})
    # The gate may run the production model (seconds of TF inference): outside the write transaction.
    result = gates.gate_run(version)
    with transaction.atomic():
        rules = gates.settings_for(project)
        # Asking again after a failed gate (new targets approved, settings changed) runs the gate
        # anew: the earlier gate-failed request is withdrawn in favour of this one.
        for old in PromotionRequest.objects.select_for_update().filter(
            version=version, status=RequestStatus.OPEN, gate_passed=False
        ):
            PromotionRequest.objects.filter(pk=old.pk, status=RequestStatus.OPEN).update(
                status=RequestStatus.WITHDRAWN,
                decided_at=timezone.now(),
                decided_by=_user(user),
                decision_comment="Superseded: the gate was run again by a new request.",
            )
            audit_record(
                actor=user,
                action="promotion_request.withdraw",
                project=project,
                obj=old,
                reason="superseded by a new request (the gate runs again)",
            )
        try:
            with transaction.atomic():
                req = PromotionRequest.objects.create(
                    version=version,
                    note=note,
                    requested_by=_user(user),
                    gate=result,
                    gate_passed=result["passed"],
                    champion_id=result["champion_id"],
                    required_approvals=max(1, rules.required_approvals),
                )
        except IntegrityError:
            raise ValidationError({"version": [f"{version} already has an open promotion request."]}) from None
        audit_record(
            actor=user,
            action="promotion_request.create",
            project=project,
            obj=req,
            reason=note,
            data={"version": version.number, "gate_passed": result["passed"], "failures": result["failures"]},
        )
        if result["passed"]:
            notify(
                project=project,
                event="promotion.requested",
                obj=req,
                url=request_url(req),
                message=f"{user.username} asks to promote {version} to production: {note}",
                roles=(Role.MANAGER,),
                data={"version": version.number, "request": req.pk},
            )
        else:
            # Not a dead end: the request stays open in the managers' inbox as "gate failed"; a manager
            # may approve it only as an exception with a written reason, or reject it.
            audit_record(
                actor=None,
                action="promotion_request.gate_failed",
                project=project,
                obj=req,
                reason="; ".join(result["failures"]),
            )
            notify(
                project=project,
                event="promotion.gate_failed",
                obj=req,
                url=request_url(req),
                message=f"{user.username} asks to promote {version} to production, but the automated gate "
                f"failed: {' '.join(result['failures'])}",
                roles=(Role.MANAGER,),
                data={"version": version.number, "request": req.pk},
            )
    return req


def _decidable(req, user):
    project = req.version.registered_model.project
    require_role(user, project, Role.MANAGER)
    if req.requested_by_id == user.pk:
        raise PermissionDenied("You made this request: another manager must decide it (four eyes).")
    if req.status != RequestStatus.OPEN:
        raise ValidationError(f"{req} is {req.status}; only an open request can be decided.")
    return project


@transaction.atomic
def promotion_request_approve(*, request, user, comment="", exception_reason=""):
    """A manager's approval. With enough approvals the version goes to production and the old one to
    archived, in this transaction. A request whose gate failed is approved only as an exception:
    each approving manager writes why (``exception_reason``), kept on the approval, audited and shown
    on the version page from then on."""
    req = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .select_related("version__registered_model")
        .get(pk=request.pk)
    )
    project = _decidable(req, user)
    exception_reason = (exception_reason or "").strip()
    if not req.gate_passed and not exception_reason:
        raise ValidationError(
            {
                "exception_reason": [
                    f"{req} failed the automated gate ({' '.join(req.gate.get('failures') or [])}). Approve it only as an "
                    "exception, with a written reason why it may go to production anyway."
                ]
            }
        )
    if req.gate_passed:
        exception_reason = ""
    if req.approvals.filter(user=user).exists():
        raise ValidationError(f"You already approved {req}; it needs another manager's approval.")
    rm = RegisteredModel.objects.select_for_update().get(pk=req.version.registered_model_id)
    current = rm.versions.filter(stage=Stage.PRODUCTION).first()
    if (current.pk if current else None) != req.champion_id:
        raise ValidationError(
            f"Production changed since the gate ran (it compared against "
            f"{'v' + str(req.gate.get('champion')) if req.champion_id else 'no production version'}); "
            "withdraw this request and request again so the gate compares against the current one."
        )
    Approval.objects.create(request=req, user=user, comment=comment or "", gate_exception=exception_reason)
    if exception_reason:
        audit_record(
            actor=user,
            action="promotion_request.gate_exception",
            project=project,
            obj=req,
            reason=exception_reason,
            data={"version": req.version.number, "failures": req.gate.get("failures") or []},
        )
    audit_record(
        actor=user,
        action="promotion_request.approve",
        project=project,
        obj=req,
        reason=comment,
        data={"approvals": req.approvals.count(), "required": req.required_approvals},
    )
    if req.approvals.count() < req.required_approvals:
        notify(
            project=project,
            event="promotion.approval_added",
            obj=req,
            url=request_url(req),
            message=f"{user.username} approved {req.version} ({req.approvals.count()} of {req.required_approvals}"
            " approvals).",
            roles=(Role.MANAGER,),
        )
        return req
    now = timezone.now()
    PromotionRequest.objects.filter(pk=req.pk, status=RequestStatus.OPEN).update(
        status=RequestStatus.APPROVED, decided_at=now, decided_by=user, decision_comment=comment or ""
    )
    version = req.version
    if current is not None:
        _set_stage(
            current, Stage.ARCHIVED, user=user, reason=f"Replaced by {version} ({req}): {comment}".strip(), request=req
        )
    _set_stage(version, Stage.PRODUCTION, user=user, reason=comment or req.note, request=req)
    req.refresh_from_db()
    notify(
        project=project,
        event="promotion.approved",
        obj=req,
        url=version_url(version),
        message=f"{user.username} approved {version} for production"
        + (f", replacing v{current.number}" if current else "")
        + (f": {comment}" if comment else "."),
        roles=MANAGERS_AND_DS,
        data={"version": version.number, "previous": current.number if current else None},
    )
    return req


@transaction.atomic
def promotion_request_reject(*, request, user, comment=""):
    req = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .select_related("version__registered_model")
        .get(pk=request.pk)
    )
    project = _decidable(req, user)
    if not (comment or "").strip():
        raise ValidationError({"comment": ["Say why the request is rejected (the comment is required)."]})
    PromotionRequest.objects.filter(pk=req.pk, status=RequestStatus.OPEN).update(
        status=RequestStatus.REJECTED, decided_at=timezone.now(), decided_by=user, decision_comment=comment
    )
    req.refresh_from_db()
    audit_record(actor=user, action="promotion_request.reject", project=project, obj=req, reason=comment)
    notify(
        project=project,
        event="promotion.rejected",
        obj=req,
        url=request_url(req),
        message=f"{user.username} rejected the promotion of {req.version}: {comment}",
        roles=MANAGERS_AND_DS,
    )
    return req


@transaction.atomic
def promotion_request_withdraw(*, request, user, reason=""):
    req = (
        PromotionRequest.objects.select_for_update(of=("self",))
        .select_related("version__registered_model")
        .get(pk=request.pk)
    )
    project = req.version.registered_model.project
    require_role(user, project, Role.DATA_SCIENTIST)
    if req.status != RequestStatus.OPEN:
        raise ValidationError(f"{req} is {req.status}; only an open request can be withdrawn.")
    PromotionRequest.objects.filter(pk=req.pk, status=RequestStatus.OPEN).update(
        status=RequestStatus.WITHDRAWN, decided_at=timezone.now(), decided_by=user, decision_comment=reason or ""
    )
    req.refresh_from_db()
    audit_record(actor=user, action="promotion_request.withdraw", project=project, obj=req, reason=reason)
    return req


def previous_production(registered_model):
    """The version a rollback returns to (None when there is none).

    Production history is a stack: an approval pushes a version, a rollback pops the current one.
    So rolling back twice after v1 → v2 → v3 gives v2, then v1 — never back to the version just
    rolled back from."""
    stack = []
    changes = (
        StageChange.objects.filter(version__registered_model=registered_model, to_stage=Stage.PRODUCTION)
        .select_related("version")
        .order_by("created_at", "id")
    )
    for change in changes:
        if change.request_id:  # an approved promotion
            stack.append(change.version)
        elif stack:  # a rollback: the current one leaves; the one below is back on top
            stack.pop()
    current = registered_model.versions.filter(stage=Stage.PRODUCTION).first()
    if len(stack) < 2 or current is None or stack[-1].pk != current.pk:
        return None
    return stack[-2]


@transaction.atomic
def model_version_rollback(*, registered_model, user, reason):
    """One step back: the current production version → archived, the previous one → production."""
    project = registered_model.project
    require_role(user, project, Role.MANAGER)
    if not (reason or "").strip():
        raise ValidationError({"reason": ["Say why you roll back (the reason is required)."]})
    rm = RegisteredModel.objects.select_for_update().get(pk=registered_model.pk)
    current = rm.versions.filter(stage=Stage.PRODUCTION).first()
    if current is None:
        raise ValidationError(f"{rm} has no production version to roll back.")
    previous = previous_production(rm)
    if previous is None or previous.pk == current.pk:
        raise ValidationError(f"{rm} has no earlier production version to roll back to.")
    _set_stage(current, Stage.ARCHIVED, user=user, reason=f"Rolled back: {reason}")
    _set_stage(previous, Stage.PRODUCTION, user=user, reason=f"Rolled back to from v{current.number}: {reason}")
    audit_record(
        actor=user,
        action="registered_model.rollback",
        project=project,
        obj=rm,
        reason=reason,
        data={"from": current.number, "to": previous.number},
    )
    notify(
        project=project,
        event="model.rolled_back",
        obj=previous,
        url=version_url(previous),
        message=f"{user.username} rolled {rm.name} back from v{current.number} to v{previous.number}: {reason}",
        roles=MANAGERS_AND_DS,
        data={"from": current.number, "to": previous.number},
    )
    return previous


# Settings and webhooks ------------------------------------------------------------------------------


@transaction.atomic
def registry_settings_update(
    *, project, user, required_approvals=None, champion_margin=None, champion_metric=None, require_export_parity=None
):
    require_role(user, project, Role.MANAGER)
    rules = gates.settings_for(project)
    errors = {}
    if required_approvals is not None:
        if (
            not isinstance(required_approvals, int)
            or isinstance(required_approvals, bool)
            or not 1 <= required_approvals <= 5
        ):
            errors["required_approvals"] = ["required_approvals must be a whole number from 1 to 5."]
        else:
            rules.required_approvals = required_approvals
    if champion_margin is not None:
        if (
            not isinstance(champion_margin, (int, float))
            or isinstance(champion_margin, bool)
            or not 0 <= champion_margin <= 0.5
        ):
            errors["champion_margin"] = ["champion_margin must be a number from 0 to 0.5 (e.g. 0.01 = one point)."]
        else:
            rules.champion_margin = float(champion_margin)
    if champion_metric is not None:
        allowed = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "roc_auc", "average_precision")
        if champion_metric not in allowed:
            errors["champion_metric"] = [f"champion_metric must be one of {', '.join(allowed)}."]
        else:
            rules.champion_metric = champion_metric
    if require_export_parity is not None:
        if not isinstance(require_export_parity, bool):
            errors["require_export_parity"] = ["require_export_parity must be true or false."]
        else:
            rules.require_export_parity = require_export_parity
    if errors:
        raise ValidationError(errors)
    rules.save()
    audit_record(
        actor=user,
        action="registry_settings.update",
        project=project,
        obj=rules,
        data={
            "required_approvals": rules.required_approvals,
            "champion_margin": rules.champion_margin,
            "champion_metric": rules.champion_metric,
            "require_export_parity": rules.require_export_parity,
        },
    )
    return rules


WEBHOOK_EVENTS = (
    "model_version.registered",
    "promotion.requested",
    "promotion.gate_failed",
    "promotion.approval_added",
    "promotion.approved",
    "scope.submitted",
    "promotion.rejected",
    "model.rolled_back",
)


@transaction.atomic
def webhook_create(*, project, user, url, events=(), secret=""):
    from django.core.validators import URLValidator

    require_role(user, project, Role.MANAGER)
    errors = {}
    try:
        URLValidator(schemes=["http", "https"])(url or "")
    except ValidationError:
        errors["url"] = [f"{url!r} is not an http(s) URL."]
    else:
        from apps.core.netguard import url_problem

        if problem := url_problem(url):
            errors["url"] = [f"{url!r}: {problem}."]
    events = list(events or [])
    unknown = [e for e in events if not isinstance(e, str) or not re.match(r"^[a-z_]+\.[a-z_]+$", e)]
    if unknown:
        errors["events"] = [
            f"{unknown[0]!r} is not an event name (e.g. {', '.join(WEBHOOK_EVENTS[:2])}); leave empty for every event."
        ]
    if secret and len(secret) < 16:
        errors["secret"] = ["A secret needs at least 16 characters (leave it empty to have one generated)."]
    if errors:
        raise ValidationError(errors)
    hook = Webhook.objects.create(
        project=project, url=url, events=events, secret=secret or secrets.token_hex(24), created_by=_user(user)
    )
    audit_record(actor=user, action="webhook.create", project=project, obj=hook, data={"url": url, "events": events})
    return hook


@transaction.atomic
def webhook_delete(*, webhook, user):
    require_role(user, webhook.project, Role.MANAGER)
    audit_record(actor=user, action="webhook.delete", project=webhook.project, obj=webhook, data={"url": webhook.url})
    webhook.delete()


def notifications_mark_read(*, user, ids=None):
    from .models import Notification

    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
