from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import WorkerHeartbeat


def live_workers():
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_STALE_AFTER_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen__gte=cutoff).order_by("hostname")


def queue_has_listener(queue):
    """Whether a live worker (its own heartbeat, recent) consumes from ``queue``."""
    return any(queue in (w.queues or []) for w in live_workers().only("queues"))
