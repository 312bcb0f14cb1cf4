"""Jobs whose heartbeat stopped are failed, so that no job stays "running" forever.

Apps register their job models here (in AppConfig.ready); beat runs ``reap_stuck_jobs``.
A model registered here has ``status``, ``heartbeat_at``, ``started_at``, ``finished_at`` and
``error`` fields. ``on_reaped(ids)`` lets the app tidy up after its jobs were failed (staged
files, a sweep whose trial died); a settler (``register_settler``) fixes jobs that have no
heartbeat of their own but hang on others (a sweep whose runs all ended).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .jobs import JobStatus

log = logging.getLogger(__name__)
REAPED_ERROR = "The worker stopped sending heartbeats (killed or lost); the job was failed by the reaper."
_REAPABLE = {}  # model -> on_reaped(ids) or None
_SETTLERS = []


def register_reapable(model, on_reaped=None):
    if on_reaped is not None or model not in _REAPABLE:
        _REAPABLE[model] = on_reaped


def register_settler(fn):
    """``fn(now) -> int``: settle jobs that are active although nothing runs for them any more."""
    if fn not in _SETTLERS:
        _SETTLERS.append(fn)


def reap_stuck_jobs(now=None, timeout_seconds=None):
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=timeout_seconds or settings.JOB_HEARTBEAT_TIMEOUT_SECONDS)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    reaped = 0
    for model, on_reaped in list(_REAPABLE.items()):
        ids = list(model.objects.filter(stale, status=JobStatus.RUNNING).values_list("pk", flat=True))
        if not ids:
            continue
        # The same condition again in the UPDATE: a job that beat meanwhile is left alone.
        failed = [
            pk
            for pk in ids
            if model.objects.filter(stale, pk=pk, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED, finished_at=now, error=REAPED_ERROR
            )
        ]
        reaped += len(failed)
        if failed:
            log.warning("reaper failed %s %s %s: heartbeat older than %s", len(failed), model.__name__, failed, cutoff)
        if failed and on_reaped is not None:
            on_reaped(failed)
    for settle in _SETTLERS:
        reaped += settle(now) or 0
    return reaped
