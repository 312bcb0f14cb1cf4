"""Profile runs: started when a version is ready (or asked), executed by a worker in batches with
progress and heartbeats, cancelled."""

import logging
import time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.jobs import JobStatus, dispatch, launches_jobs, step_delay, transition, transition_or_raise
from apps.core.storage import blob_read
from apps.datasets.models import VersionItem, VersionStatus
from apps.projects.permissions import require_role

from .. import imagestats
from ..models import ItemStats, ProfileRun
from .profile import profile_build
from .rules import _assertions_run

log = logging.getLogger(__name__)

BATCH = 64  # at most this many images measured between two saves of progress (and heartbeats)
HEARTBEAT_SECONDS = 3  # and at least this often; each save is one commit


# Runs --------------------------------------------------------------------------------------------


@launches_jobs
def profile_run_start(*, version, user=None):
    """Queue a profile of ``version`` (ready versions only). An active run of the version is
    returned instead of starting a second one."""
    if version.status != VersionStatus.READY:
        raise ValidationError(
            {"version": f"Version v{version.number} is {version.status}; only a ready version can be profiled."}
        )
    existing = ProfileRun.objects.filter(version=version, status__in=JobStatus.ACTIVE).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            run = ProfileRun.objects.create(
                project=version.project,
                version=version,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                total=version.entries.count(),
            )
            audit_record(
                actor=user,
                action="profiling.run_start",
                project=version.project,
                obj=run,
                data={"version": version.number},
            )
            dispatch("apps.profiling.tasks.profile_run_execute", run.pk, job=run)
    except IntegrityError:  # a racing start won
        return ProfileRun.objects.get(version=version, status__in=JobStatus.ACTIVE)
    return run


def profile_run_cancel(*, run, user):
    require_role(user, run.project, Role.DATA_SCIENTIST)
    if not transition(ProfileRun, run.pk, JobStatus.ACTIVE, JobStatus.CANCELLED, finished_at=timezone.now()):
        run.refresh_from_db()
        raise ValidationError(
            {"status": f"Profile #{run.pk} is {run.status}; only a queued or running one can be cancelled."}
        )
    audit_record(actor=user, action="profiling.run_cancel", project=run.project, obj=run)
    run.refresh_from_db()
    return run


def _measure(entry):
    item = entry.item
    row = ItemStats(run_id=None, item_id=item.pk, split=entry.split, label=entry.label or "", sha256=item.sha256)
    try:
        data = blob_read(item.blob)
        s = imagestats.stats_from_bytes(data)
    except (imagestats.UnreadableImage, OSError) as exc:
        row.readable, row.error = False, str(exc)[:300]
        row.format, row.bytes = item.format, item.bytes
        return row
    for k in (
        "width",
        "height",
        "aspect",
        "mode",
        "channels",
        "format",
        "bytes",
        "brightness",
        "contrast",
        "sharpness",
        "entropy",
        "phash",
        "pixel_sha256",
    ):
        setattr(row, k, s[k])
    return row


def profile_run_execute(*, run_id):
    """Measure every image of the run's version, build the profile and run the assertions.

    Safe to retry: images measured by an earlier attempt of the same run are skipped.
    """
    run = ProfileRun.objects.select_related("version", "project").get(pk=run_id)
    if run.status == JobStatus.QUEUED:
        if not transition(
            ProfileRun,
            run.pk,
            JobStatus.QUEUED,
            JobStatus.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
        ):
            return
    elif run.status != JobStatus.RUNNING:  # finished or cancelled meanwhile
        return
    try:
        done = set(ItemStats.objects.filter(run=run).values_list("item_id", flat=True))
        entries = list(VersionItem.objects.filter(version=run.version).select_related("item__blob").order_by("id"))
        ProfileRun.objects.filter(pk=run.pk).update(total=len(entries), processed=len(done))
        todo = [e for e in entries if e.item_id not in done]
        pending, processed, last_beat = [], len(done), time.monotonic()
        for entry in todo:
            step_delay()
            row = _measure(entry)
            row.run_id = run.pk
            pending.append(row)
            if len(pending) >= BATCH or time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                processed += len(pending)
                if not _save_batch(run, pending, processed):
                    return  # cancelled (or reaped): stop quietly
                pending, last_beat = [], time.monotonic()
        processed += len(pending)
        if not _save_batch(run, pending, processed):
            return
        profile = profile_build(run)
        with transaction.atomic():
            summary = _assertions_run(run, profile)
            transition_or_raise(
                ProfileRun,
                run.pk,
                JobStatus.RUNNING,
                JobStatus.SUCCEEDED,
                profile=profile,
                summary=summary,
                finished_at=timezone.now(),
                processed=processed,
            )
    except Exception as exc:
        log.exception("profile run %s failed", run_id)
        transition(
            ProfileRun,
            run.pk,
            JobStatus.RUNNING,
            JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise


def _save_batch(run, rows, processed):
    if rows:
        ItemStats.objects.bulk_create(rows, ignore_conflicts=True)
    n = ProfileRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        processed=processed, heartbeat_at=timezone.now()
    )
    return n == 1
