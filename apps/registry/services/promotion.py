"""Promotion requests and their decisions (four eyes, the gate), and rollback to the previous
production version."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.projects.permissions import require_role
from apps.projects.services import scope_gate_require

from .. import gate as gates
from ..models import (
    Approval,
    PromotionRequest,
    RegisteredModel,
    RequestStatus,
    Stage,
    StageChange,
)
from ..notify import notify
from .versions import MANAGERS_AND_DS, _set_stage, _user, request_url, version_url

# Promotion ------------------------------------------------------------------------------------------


def promotion_request_create(*, version, user, note=""):
    """Ask for ``version`` to go to production. The gate runs now and its results are stored on the
    request; a request whose gate fails is closed at once (rejected by the gate) with every failure."""
    project = version.registered_model.project
    require_role(user, project, Role.DATA_SCIENTIST)
    scope_gate_require(project, "A promotion request")
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
