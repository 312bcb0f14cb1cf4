from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import WorkerHeartbeat


def live_workers():
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_STALE_AFTER_SECONDS)
    return WorkerHeartbeat.objects.filter(last_seen__gte=cutoff).order_by("hostname")
