"""Telling people: in-portal notifications, email (Django's mail backends) and signed webhooks.

``notify`` is shared: the registry calls it for its events and monitoring for alerts. It writes one
Notification per member holding one of ``roles``, queues their email (``tasks.send_emails`` on
``default``, sent by a worker once the transaction commits, never inside the request) and queues one WebhookDelivery per matching webhook (delivered by a Celery task on ``default``,
retried with backoff, every attempt recorded on the row).
"""

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.utils import timezone

from apps.accounts.models import ProjectMember, Role
from apps.core.jobs import dispatch
from apps.core.netguard import guarded_opener

from .models import DeliveryStatus, Notification, Webhook, WebhookDelivery

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Portal-Signature"  # "sha256=<hex HMAC-SHA256 of the body with the webhook's secret>"
EVENT_HEADER = "X-Portal-Event"
WEBHOOK_MAX_ATTEMPTS = 5
WEBHOOK_TIMEOUT_SECONDS = 10


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_seconds(attempt: int) -> int:
    """Wait before retry ``attempt`` (1-based): 10 s, 40 s, 160 s, 640 s."""
    return 10 * 4 ** (max(attempt, 1) - 1)


def recipients(project, roles):
    users = (
        get_user_model()
        .objects.filter(
            pk__in=ProjectMember.objects.filter(project=project, role__in=roles).values("user_id"), is_active=True
        )
        .order_by("pk")
    )
    return list(users)


def _absolute(url):
    base = getattr(settings, "PORTAL_BASE_URL", "") or ""
    return base.rstrip("/") + url if url.startswith("/") and base else url


def notify(
    *,
    project,
    event,
    message,
    url="",
    roles=(Role.MANAGER, Role.DATA_SCIENTIST),
    obj=None,
    data=None,
    users=None,
    webhooks=True,
):
    """Tell the project's members holding ``roles`` (or exactly ``users``) about ``event``; returns
    the Notifications made. ``webhooks=False``: a message to people only (a mention)."""
    users = recipients(project, roles) if users is None else list(users)
    object_type = obj._meta.label_lower if obj is not None else ""
    object_id = str(obj.pk) if obj is not None else ""
    notes = Notification.objects.bulk_create(
        [
            Notification(
                project=project,
                user=u,
                event=event,
                message=message,
                url=url,
                object_type=object_type,
                object_id=object_id,
            )
            for u in users
        ]
    )
    emails = [u.email for u in users if u.email]
    if emails:
        subject = f"[{project.name}] {message}"[:200]
        body = (
            f"{message}\n\n{_absolute(url)}\n\n— ML Portal ({event})\n"
            if url
            else f"{message}\n\n— ML Portal ({event})\n"
        )

        dispatch("apps.registry.tasks.send_emails", subject, body, emails)  # by a worker, once this transaction commits
    payload = {
        "event": event,
        "project": project.slug,
        "message": message,
        "url": _absolute(url),
        "object": {"type": object_type, "id": object_id} if obj is not None else None,
        "data": data or {},
        "sent_at": timezone.now().isoformat(),
    }
    for hook in Webhook.objects.filter(project=project, active=True) if webhooks else ():
        if hook.wants(event):
            delivery = WebhookDelivery.objects.create(
                webhook=hook, event=event, body=json.dumps(payload, sort_keys=True, default=str)
            )
            dispatch("apps.registry.tasks.webhook_deliver", delivery.pk)
    return notes


def emails_send(*, subject, body, addresses):
    """Send one email per address; returns the addresses that failed (logged; the event itself stands)."""
    failed = []
    for address in addresses:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
        except Exception:
            log.exception("notification email to %s failed", address)
            failed.append(address)
    return failed


def _post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        # http(s) only, never to an internal address (checked on the connected socket), no redirects.
        with guarded_opener().open(req, timeout=WEBHOOK_TIMEOUT_SECONDS) as resp:
            return resp.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"[:300]


def webhook_delivery_attempt(*, delivery_id):
    """One try at sending a delivery. Returns True when it should be retried later.

    A delivery that is no longer pending (delivered, or failed for good) is left alone, so a
    redelivered task never sends twice after a success."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return False
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: delivery.event,
        SIGNATURE_HEADER: sign(delivery.webhook.secret, body),
        "User-Agent": "ml-portal-webhooks/1",
    }
    code, error = _post(delivery.webhook.url, body, headers)
    now = timezone.now()
    attempt = delivery.attempts + 1
    ok = code is not None and 200 <= code < 300
    entry = {"attempt": attempt, "at": now.isoformat(), "status_code": code, "error": "" if ok else error}
    fields = {"attempts": attempt, "attempts_log": [*delivery.attempts_log, entry]}
    if ok:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif attempt >= WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    else:
        fields.update(next_attempt_at=now + timezone.timedelta(seconds=backoff_seconds(attempt)))
    # Compare-and-set on the attempt count: two workers racing on one delivery record one attempt each.
    WebhookDelivery.objects.filter(pk=delivery_id, attempts=delivery.attempts).update(**fields)
    return not ok and attempt < WEBHOOK_MAX_ATTEMPTS


def scope_submitted_notify(sender, *, project, user, **kwargs):
    """The PM submitted the scope: the managers who approve it are told (inbox, e-mail, webhooks)."""
    from django.urls import reverse

    notify(
        project=project,
        event="scope.submitted",
        obj=project,
        url=reverse("project-scope", args=[project.slug]),
        message=f"{user.username} submitted the scope of {project.name} for approval.",
        roles=(Role.MANAGER,),
        data={"scope_status": project.scope_status},
    )


def comment_mention_notify(sender, *, comment, users, url, message, **kwargs):
    """A comment mentioned members: each is told in the portal and by email (sent by a worker)."""
    notify(
        project=comment.project,
        event="comment.mention",
        obj=comment,
        url=url,
        message=message,
        users=users,
        webhooks=False,
        data={"comment": comment.pk},
    )
