"""Serving's writes: project tokens and routes. (Prediction rows are written by logwriter.LogWriter.)"""

import secrets

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.core.audit import audit_record
from apps.core.text import clean_name
from apps.registry.models import Stage
from apps.registry.selectors import production_of

from .auth import token_cache_key
from .models import ProjectToken, RouteMode, ServingRoute, TokenScope


@transaction.atomic
def project_token_create(*, project, user, name, scopes=None, rate_per_minute=None):
    """Returns (token, key). The key is shown once; only its sha256 is kept."""
    name = clean_name(name)
    if not name:
        raise ValidationError({"name": "Give the token a name (what will use it)."})
    scopes = sorted(set(scopes or [TokenScope.PREDICT]))
    unknown = set(scopes) - set(TokenScope.values)
    if unknown:
        raise ValidationError(
            {"scopes": f"Unknown scope(s): {', '.join(sorted(unknown))}; choose from {', '.join(TokenScope.values)}."}
        )
    if rate_per_minute is not None and (not isinstance(rate_per_minute, int) or rate_per_minute < 1):
        raise ValidationError({"rate_per_minute": "rate_per_minute must be a whole number of at least 1."})
    key = ProjectToken.PREFIX + secrets.token_urlsafe(32)
    token = ProjectToken.objects.create(
        project=project,
        name=name[:100],
        key_hash=ApiToken.hash_key(key),
        key_prefix=key[:12],
        scopes=scopes,
        rate_per_minute=rate_per_minute,
        created_by=user,
    )
    audit_record(
        actor=user,
        project=project,
        action="serving.token_created",
        obj=token,
        data={"name": token.name, "scopes": scopes},
    )
    return token, key


@transaction.atomic
def project_token_revoke(*, token, user):
    n = ProjectToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=user
    )
    if n:
        cache.delete(token_cache_key(token.key_hash))
        audit_record(
            actor=user, project=token.project, action="serving.token_revoked", obj=token, data={"name": token.name}
        )
    token.refresh_from_db()
    return token


@transaction.atomic
def serving_route_set(*, registered_model, user, mode, candidate=None, canary_share=None, reason="", engine=None):
    """Route the model's unpinned traffic: ``off``; ``canary`` (a share answered by ``candidate``); or
    ``shadow`` (every request also sent to ``candidate``, answers from production). ``engine``:
    ``keras`` (TensorFlow) or ``onnx`` (the versions' ONNX exports in ONNX Runtime); unchanged when None."""
    if mode not in RouteMode.values:
        raise ValidationError({"mode": f"mode must be one of {', '.join(RouteMode.values)}, not {mode!r}."})
    if engine is not None and engine not in ("keras", "onnx"):
        raise ValidationError({"engine": f"engine must be keras or onnx, not {engine!r}."})
    route, _ = ServingRoute.objects.select_for_update().get_or_create(registered_model=registered_model)
    if engine == "onnx":
        prod = production_of(registered_model)
        missing = [
            f"v{v.number}"
            for v in (prod, candidate if mode != RouteMode.OFF else None)
            if v is not None and "onnx" not in (v.artifacts or {})
        ]
        if missing:
            raise ValidationError(
                {
                    "engine": f"{' and '.join(missing)} of {registered_model.name} has no ONNX export "
                    "(see the version page's Exports); serving stays on Keras."
                }
            )
    if mode != RouteMode.OFF:
        if candidate is None:
            raise ValidationError({"candidate": "Choose the staging version to route to."})
        if candidate.registered_model_id != registered_model.pk:
            raise ValidationError({"candidate": f"v{candidate.number} is not a version of {registered_model.name}."})
        if candidate.stage != Stage.STAGING:
            raise ValidationError(
                {
                    "candidate": f"v{candidate.number} is {candidate.get_stage_display().lower()}; "
                    "only a staging version can be a canary or shadow."
                }
            )
    share = route.canary_share if canary_share is None else canary_share
    try:
        share = float(share)
    except (TypeError, ValueError):
        raise ValidationError(
            {"canary_share": f"canary_share must be a number between 0 and 1, not {share!r}."}
        ) from None
    if not 0.0 <= share <= 1.0:
        raise ValidationError({"canary_share": f"canary_share must be between 0 and 1, not {share:g}."})
    old = {
        "mode": route.mode,
        "candidate": route.candidate.number if route.candidate else None,
        "share": route.canary_share,
        "engine": route.engine,
    }
    route.mode, route.canary_share, route.updated_by = mode, share, user
    route.engine = engine or route.engine
    route.candidate = candidate if mode != RouteMode.OFF else route.candidate
    route.save()
    audit_record(
        actor=user,
        project=registered_model.project,
        action="serving.route_set",
        obj=registered_model,
        reason=reason,
        data={
            "old": old,
            "new": {
                "mode": mode,
                "candidate": candidate.number if candidate else None,
                "share": share,
                "engine": route.engine,
            },
        },
    )
    return route
