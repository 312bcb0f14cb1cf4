"""The ingest job a worker runs: staged files read (archives expanded), inspected and recorded in
batches, each batch one transaction; the job finished and its staging cleaned up; unfinished
jobs resumed."""

import logging
import zipfile

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.images import Rejected, check_size, image_inspect
from apps.core.jobs import dispatch, step_delay, task_named, transition
from apps.core.storage import StorageFull, blobs_put

from ..ingest import (
    archive_read,
    archive_scan,
    label_from_path,
)
from ..models import (
    ImportFile,
    ImportJob,
    ImportStatus,
    Item,
)
from ..signals import items_imported
from .staging import ACCEPTED, BATCH, DUPLICATE, PENDING, REJECTED

log = logging.getLogger(__name__)

# The ingest job -----------------------------------------------------------------------------


def import_job_run(*, job_id, inline=False, progress=None):
    """The job's first step: move it to running, unpack archives, then hand out chunks of files.

    Run again on a job already running (a restarted worker), it picks up what is still pending."""
    now = timezone.now()
    transition(ImportJob, job_id, ImportStatus.QUEUED, ImportStatus.RUNNING, started_at=now, heartbeat_at=now)
    job = ImportJob.objects.get(pk=job_id)
    if job.status != ImportStatus.RUNNING:
        return job
    try:
        for archive in job.files.filter(kind="archive", result=PENDING).order_by("id"):
            _archive_expand(job, archive)
        # total: every image plus every archive that could not be opened (each has a result row)
        ImportJob.objects.filter(pk=job.pk).update(
            total=job.files.filter(Q(kind="image") | Q(kind="archive", result=REJECTED)).count()
        )
    except Exception as exc:  # storage down or a bug: the job says so instead of hanging
        log.exception("import %s failed while unpacking archives", job_id)
        _job_fail(job, f"Unpacking archives failed: {exc}")
        return job
    pending = list(job.files.filter(kind="image", result=PENDING).order_by("id").values_list("id", flat=True))
    # At least DATASET_INGEST_CHUNK_FILES per task, and no more than ~8 tasks for a big import:
    # enough to spread over several worker processes, few enough that queueing costs little.
    size = max(1, settings.DATASET_INGEST_CHUNK_FILES, -(-len(pending) // 8))
    chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
    if not inline:
        for chunk in chunks[1:]:
            dispatch("apps.datasets.tasks.ingest_chunk", job.pk, chunk[0], chunk[-1])
        chunks = chunks[:1]  # this task takes the first chunk itself
    for chunk in chunks:
        import_chunk_run(job_id=job.pk, first_id=chunk[0], last_id=chunk[-1], progress=progress)
    _finish_if_complete(job.pk)
    job.refresh_from_db()
    return job


def _job_fail(job, error):
    transition(
        ImportJob,
        job.pk,
        (ImportStatus.QUEUED, ImportStatus.RUNNING),
        ImportStatus.FAILED,
        finished_at=timezone.now(),
        error=str(error)[:2000],
    )


def _archive_expand(job, archive):
    try:
        with default_storage.open(archive.staged_path, "rb") as fh:
            entries, skipped = archive_scan(fh)
    except Rejected as exc:
        with transaction.atomic():
            if ImportFile.objects.filter(pk=archive.pk, result=PENDING).update(result=REJECTED, reason=str(exc)[:300]):
                ImportJob.objects.filter(pk=job.pk).update(rejected=F("rejected") + 1, processed=F("processed") + 1)
        return
    with transaction.atomic():
        # The archive row's own compare-and-set makes unpacking happen once, even if two workers try.
        ok = ImportFile.objects.filter(pk=archive.pk, result=PENDING).update(
            result=ACCEPTED,
            reason=f"Unpacked: {len(entries)} image(s)"
            + (f"; {skipped} other file(s) skipped (not images)." if skipped else "."),
        )
        if not ok:
            return
        base = archive.name.rsplit("/", 1)[0] + "/" if "/" in archive.name else ""
        rows, bad = [], 0
        for e in entries:
            name = (base + e.name)[:500]
            label = label_from_path(e.name) if job.labels_from_folders and not e.reason else ""
            rows.append(
                ImportFile(
                    job=job,
                    name=name,
                    staged_path=archive.staged_path,
                    archive_member=e.member,
                    archive_name=archive.name[:500],
                    size=e.size,
                    kind="image",
                    label=label[:100],
                    result=REJECTED if e.reason else PENDING,
                    reason=e.reason[:300],
                )
            )
            bad += bool(e.reason)
        ImportFile.objects.bulk_create(rows)
        ImportJob.objects.filter(pk=job.pk).update(
            rejected=F("rejected") + bad, processed=F("processed") + bad, skipped=F("skipped") + skipped
        )


def _read_and_inspect(f, archives):
    """(Inspected, None) or (None, reason) for one pending file."""
    try:
        if f.archive_member:
            zf = archives.get(f.staged_path)
            if zf is None:
                zf = archives[f.staged_path] = zipfile.ZipFile(default_storage.open(f.staged_path, "rb"))
            data = archive_read(zf, f.archive_member)
        else:
            with default_storage.open(f.staged_path, "rb") as fh:
                data = fh.read(settings.DATASET_MAX_FILE_BYTES + 1)
            if len(data) > settings.DATASET_MAX_FILE_BYTES:  # name the real size, not the bound we read
                check_size(default_storage.size(f.staged_path))
        return image_inspect(data), data
    except Rejected as exc:
        return None, str(exc)
    except FileNotFoundError:
        return None, "The staged copy of this file is missing; upload it again."


def import_chunk_run(*, job_id, first_id, last_id, progress=None):
    """Ingest the pending files with ids in [first_id, last_id]. Safe to run twice: each file is
    claimed by a compare-and-set on its pending result, and items are unique by (project, sha256)."""
    job = ImportJob.objects.select_related("project", "created_by").get(pk=job_id)
    if job.status != ImportStatus.RUNNING:
        return
    files = list(job.files.filter(kind="image", result=PENDING, id__gte=first_id, id__lte=last_id).order_by("id"))
    archives = {}
    try:
        for i in range(0, len(files), BATCH):
            batch = []
            for f in files[i : i + BATCH]:
                step_delay()
                inspected, data_or_reason = _read_and_inspect(f, archives)
                if inspected is not None:
                    batch.append((f, inspected, data_or_reason, ""))
                else:
                    batch.append((f, None, None, data_or_reason))
            _batch_record(job, batch)
            if progress:
                progress(ImportJob.objects.get(pk=job.pk))
    except StorageFull as exc:
        # The batch was rolled back (no row, no file of it kept); the files before it are complete.
        log.error("import %s stopped: %s", job_id, exc.detail)
        _job_fail(
            job,
            f"{exc.detail} {ImportJob.objects.get(pk=job.pk).processed} of {job.total} files were "
            "imported before the storage filled up; import the rest again once there is room.",
        )
        _staging_cleanup(job)
        return
    finally:
        for zf in archives.values():
            zf.close()
    _finish_if_complete(job.pk)


def _mime(fmt):
    return {
        "PNG": "image/png",
        "JPEG": "image/jpeg",
        "BMP": "image/bmp",
        "TIFF": "image/tiff",
        "WEBP": "image/webp",
        "GIF": "image/gif",
    }.get(fmt, "application/octet-stream")


@transaction.atomic
def _batch_record(job, batch):
    """Record one batch of inspected files in one transaction: blobs, items, labels, results.

    Each file is recorded only if it is still pending (a second run of the same chunk skips it);
    an item that already exists with the same sha256 makes the file a duplicate."""
    now = timezone.now()
    # A write first: on SQLite this takes the write lock at once (no lock upgrade to fail later).
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=now)
    pending = set(
        ImportFile.objects.select_for_update()
        .filter(pk__in=[b[0].pk for b in batch], result=PENDING)
        .values_list("pk", flat=True)
    )
    batch = [b for b in batch if b[0].pk in pending]
    if not batch:
        return
    good = [(f, ins, data) for f, ins, data, _ in batch if ins is not None]
    existing = {
        i.sha256: i for i in Item.objects.filter(project=job.project, sha256__in={ins.sha256 for _, ins, _ in good})
    }
    fresh = {}  # sha256 -> the file that brings it first
    for f, ins, data in good:
        if ins.sha256 not in existing and ins.sha256 not in fresh:
            fresh[ins.sha256] = (f, ins, data)
    if fresh:
        # A staged file that is a whole image (not a zip member) becomes the blob without a copy.
        stored = blobs_put(
            [
                (
                    data,
                    ins.format.lower().replace("jpeg", "jpg"),
                    _mime(ins.format),
                    ins.sha256,
                    None if f.archive_member else f.staged_path,
                )
                for f, ins, data in fresh.values()
            ]
            + [
                (ins.thumbnail, ins.thumbnail_ext, _mime(ins.thumbnail_ext.upper().replace("JPG", "JPEG")))
                for _, ins, _ in fresh.values()
            ]
        )
        n = len(fresh)
        Item.objects.bulk_create(
            [
                Item(
                    project=job.project,
                    sha256=ins.sha256,
                    blob=stored[k],
                    thumbnail=stored[n + k],
                    original_name=f.name[-255:],
                    width=ins.width,
                    height=ins.height,
                    mode=ins.mode[:12],
                    format=ins.format[:12],
                    bytes=ins.bytes,
                    uploaded_by=job.created_by,
                    import_job=job,
                    source="upload",
                )
                for k, (f, ins, _) in enumerate(fresh.values())
            ],
            ignore_conflicts=True,
        )  # another worker may have inserted the same content a moment ago
        for item in Item.objects.filter(project=job.project, sha256__in=list(fresh)):
            existing[item.sha256] = item
    counts, updates, labels = {ACCEPTED: 0, DUPLICATE: 0, REJECTED: 0}, [], []
    for f, ins, _data, reason in batch:
        if ins is None:
            f.result, f.reason = REJECTED, reason[:300]
        else:
            item = existing[ins.sha256]
            mine = (
                fresh.get(ins.sha256, (None,))[0] is f
                and item.import_job_id == job.pk
                and item.original_name == f.name[-255:]
            )
            f.result, f.item = (ACCEPTED if mine else DUPLICATE), item
            f.reason = (
                "" if mine else f"Same content as item #{item.pk} ({item.original_name}) already in the dataset."[:300]
            )
            if f.label:
                labels.append((item, f.label))
        counts[f.result] += 1
        updates.append(f)
    items_imported.send(sender=ImportJob, job=job, labels=labels)  # labeling: labels from folders, in one go
    with connection.cursor() as cur:  # one prepared statement for the batch (bulk_update's CASE is slower)
        # The only interpolation is our own table name; every value is a bound parameter.
        cur.executemany(
            f"UPDATE {ImportFile._meta.db_table} SET result = %s, reason = %s, item_id = %s WHERE id = %s",  # nosec B608
            [(f.result, f.reason, f.item.pk if f.item else None, f.pk) for f in updates],
        )
    ImportJob.objects.filter(pk=job.pk).update(
        processed=F("processed") + len(updates),
        accepted=F("accepted") + counts[ACCEPTED],
        duplicates=F("duplicates") + counts[DUPLICATE],
        rejected=F("rejected") + counts[REJECTED],
    )


def _finish_if_complete(job_id):
    if ImportFile.objects.filter(job_id=job_id, result=PENDING).exists():
        return False
    if not transition(
        ImportJob,
        job_id,
        ImportStatus.RUNNING,
        ImportStatus.DONE,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    ):
        return False
    job = ImportJob.objects.get(pk=job_id)
    _staging_cleanup(job)
    audit_record(
        actor=job.created_by,
        action="import.finished",
        project=job.project,
        obj=job,
        data={"accepted": job.accepted, "duplicates": job.duplicates, "rejected": job.rejected},
    )
    return True


def _staging_cleanup(job):
    for path in set(job.files.exclude(staged_path="").values_list("staged_path", flat=True)):
        try:
            default_storage.delete(path)
        except OSError:
            log.warning("could not delete staged file %s", path)


def import_jobs_resume():
    """Hand unfinished import jobs to the workers again (called when a worker starts): a worker
    killed mid-import left its job running with files pending, and its message may be gone."""
    ingest_job = task_named("apps.datasets.tasks.ingest_job")
    ids = list(
        ImportJob.objects.filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).values_list("pk", flat=True)
    )
    for pk in ids:
        ingest_job.apply_async(args=[pk])
    return ids
