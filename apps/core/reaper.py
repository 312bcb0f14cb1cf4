"""Jobs whose heartbeat stopped are failed, so that no job stays "running" forever.

Apps register their job models here (in AppConfig.ready); beat runs ``reap_stuck_jobs``.
A model registered here has ``status``, ``heartbeat_at`` and ``error`` fields.
"""
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .jobs import JobStatus

_REAPABLE = []


def register_reapable(model):
    if model not in _REAPABLE:
        _REAPABLE.append(model)


def reap_stuck_jobs(now=None, timeout_seconds=None):
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=timeout_seconds or settings.JOB_HEARTBEAT_TIMEOUT_SECONDS)
    reaped = 0
    for model in _REAPABLE:
        stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
        reaped += model.objects.filter(stale, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED,
            finished_at=now,
            error="The worker stopped sending heartbeats (killed or lost); the job was failed by the reaper.",
        )
    return reaped
