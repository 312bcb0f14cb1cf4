"""The registry's settings (the gate's rules), webhooks, and notifications marked read."""

import re
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.netguard import url_problem
from apps.projects.permissions import require_role

from .. import gate as gates
from ..models import (
    Notification,
    Webhook,
)
from .versions import _user

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
        if champion_metric not in gates.CHAMPION_METRICS:
            errors["champion_metric"] = [f"champion_metric must be one of {', '.join(gates.CHAMPION_METRICS)}."]
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

    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
