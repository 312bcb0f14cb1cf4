"""Celery shims for the registry (queue ``default``): webhook deliveries, retried with backoff."""

from celery import shared_task

from . import notify
from .exports import export_execute


@shared_task(
    name="apps.registry.tasks.webhook_deliver",
    bind=True,
    ignore_result=True,
    max_retries=notify.WEBHOOK_MAX_ATTEMPTS - 1,
    soft_time_limit=60,
    time_limit=90,
)
def webhook_deliver(self, delivery_id):
    if notify.webhook_delivery_attempt(delivery_id=delivery_id):
        raise self.retry(countdown=notify.backoff_seconds(self.request.retries + 1))


@shared_task(
    name="apps.registry.tasks.send_emails",
    bind=True,
    ignore_result=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=180,
)
def send_emails(self, subject, body, addresses):
    """Notification email, sent here rather than inside the request that caused it (a slow or absent
    mail server never holds up an approval); addresses the server refused are retried with backoff."""
    failed = notify.emails_send(subject=subject, body=body, addresses=addresses)
    if failed:
        raise self.retry(args=(subject, body, failed), countdown=notify.backoff_seconds(self.request.retries + 1))


@shared_task(name="apps.registry.tasks.run_export", ignore_result=True, soft_time_limit=600, time_limit=660)
def run_export(export_id):

    export_execute(export_id=export_id)  # a row not queued (done, or gone) makes it a no-op
