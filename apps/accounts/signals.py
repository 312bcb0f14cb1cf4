"""Sign-in lockouts (django-axes): the client address axes counts, and the record of a lockout in
the log and the audit log (site-wide: no project)."""

import logging

from django.conf import settings

from apps.core.audit import audit_record

log = logging.getLogger("apps.accounts.security")


def client_ip(request):
    """REMOTE_ADDR; behind a trusted proxy (TRUST_X_FORWARDED_FOR), X-Forwarded-For's first hop."""
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
        if forwarded:
            return forwarded[:45]
    return request.META.get("REMOTE_ADDR") or None


def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    log.warning(
        "sign-in locked for %s minutes after %s failures: username %r from %s",
        minutes,
        settings.AXES_FAILURE_LIMIT,
        username,
        ip_address,
    )
    audit_record(
        actor=None,
        action="accounts.login_locked",
        reason=f"{settings.AXES_FAILURE_LIMIT} failed sign-ins",
        data={"username": (username or "")[:150], "ip_address": ip_address or "", "minutes": minutes},
    )
