"""Every write of the datasets app: uploads, import jobs (staging and ingest), dataset versions."""

import hashlib
import json
import logging
import os
import random
import tempfile
import uuid
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.images import Rejected, check_size, image_inspect, size_refusal
from apps.core.jobs import dispatch, launches_jobs, step_delay, transition
from apps.core.storage import StorageFull, blobs_put, files_kept_only_on_success, storage_save, storage_save_copy
from apps.core.text import clean_name

from .ingest import (
    IMAGE_EXTENSIONS,
    archive_read,
    archive_scan,
    clean_relative_name,
    is_archive_name,
    label_from_path,
    split_from_path,
)
from .labels import label_reader
from .models import (
    DatasetVersion,
    ImportFile,
    ImportFileResult,
    ImportJob,
    ImportStatus,
    Item,
    Upload,
    VersionItem,
    VersionStatus,
)
from .signals import items_imported, version_ready

log = logging.getLogger(__name__)
PENDING, ACCEPTED, DUPLICATE, REJECTED = (
    ImportFileResult.PENDING,
    ImportFileResult.ACCEPTED,
    ImportFileResult.DUPLICATE,
    ImportFileResult.REJECTED,
)
BATCH = 24  # files decoded before one database transaction records them


# Staging ------------------------------------------------------------------------------------


def _staging_dir():
    return f"staging/{uuid.uuid4().hex}"


def _staged_name(folder, n, name):
    return f"{folder}/{n:06d}-{os.path.basename(name)[-80:] or 'file'}"


def _stage_bytes(folder, n, name, data_or_file):
    content = ContentFile(data_or_file) if isinstance(data_or_file, bytes) else File(data_or_file)
    return storage_save(_staged_name(folder, n, name), content)


def _file_row(name, staged_path, size, labels_from_folders):
    kind = "archive" if is_archive_name(name) and name.lower().endswith(".zip") else "image"
    label = label_from_path(name) if labels_from_folders and kind == "image" else ""
    return dict(name=name[:500], staged_path=staged_path, size=size, kind=kind, label=label[:100])


@transaction.atomic
def _job_create(*, project, user, source, labels_from_folders, rows, rejected=(), skipped=0, dispatch_job=True):
    """One ImportJob with its staged files (rows), files refused before staging (rejected) and the
    count of files that were not images (skipped)."""
    job = ImportJob.objects.create(
        project=project,
        created_by=user,
        source=source,
        labels_from_folders=labels_from_folders,
        total=sum(1 for r in rows if r["kind"] == "image") + len(rejected),
        processed=len(rejected),
        rejected=len(rejected),
        skipped=skipped,
    )
    ImportFile.objects.bulk_create(
        [ImportFile(job=job, **r) for r in rows]
        + [ImportFile(job=job, name=name[:500], result=REJECTED, reason=reason[:300]) for name, reason in rejected]
    )
    audit_record(
        actor=user,
        action="import.started",
        project=project,
        obj=job,
        data={"files": len(rows) + len(rejected), "source": source},
    )
    if dispatch_job:
        from .tasks import ingest_job

        dispatch(ingest_job, job.pk, job=job, on_unavailable=lambda: _import_unqueued(job.pk))
    return job


def _import_unqueued(job_id):
    """The broker refused the job (it is failed with that reason): resumable uploads are freed to be
    imported again; files staged only for this job are deleted."""
    keep = set(Upload.objects.filter(job_id=job_id).values_list("staged_path", flat=True))
    Upload.objects.filter(job_id=job_id).update(job=None)
    for path in (
        set(ImportFile.objects.filter(job_id=job_id).exclude(staged_path="").values_list("staged_path", flat=True))
        - keep
    ):
        try:
            default_storage.delete(path)
        except OSError:
            log.warning("could not delete staged file %s", path)


@launches_jobs
def import_folder_start(*, project, user, folder: Path, labels_from_folders: bool, dispatch_job=True) -> ImportJob:
    """Stage the image files under ``folder`` (a folder on this server) and start the ingest job.

    Only files with an image extension are taken (a README beside the images is not an upload
    mistake); symbolic links are not followed and are reported as rejected."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValidationError({"folder": f"{folder} is not a folder on this server."})
    staging, rows, rejected, n, skipped = _staging_dir(), [], [], 0, 0
    with files_kept_only_on_success() as staged_files:  # a full disk half-way keeps no staged file
        for root, dirs, files in os.walk(folder, followlinks=False):
            dirs.sort()
            for fname in sorted(files):
                path = Path(root) / fname
                rel = path.relative_to(folder).as_posix()
                if path.suffix.lower() not in IMAGE_EXTENSIONS and not path.is_symlink():
                    skipped += 1
                    continue
                if path.is_symlink():
                    rejected.append((rel, "Symbolic links are not followed."))
                    continue
                n += 1
                staged_files.append(storage_save_copy(_staged_name(staging, n, rel), path))
                rows.append(_file_row(rel, staged_files[-1], path.stat().st_size, labels_from_folders))
        if not rows and not rejected:
            raise ValidationError({"folder": f"No image files found under {folder}."})
        return _job_create(
            project=project,
            user=user,
            source="folder",
            labels_from_folders=labels_from_folders,
            rows=rows,
            rejected=rejected,
            skipped=skipped,
            dispatch_job=dispatch_job,
        )


@launches_jobs
def import_files_start(*, project, user, files, labels_from_folders=False, names=None) -> ImportJob:
    """Stage uploaded files (Django UploadedFile objects; zips are unpacked by the job) and start it.

    ``names`` may carry each file's relative path (a dropped folder), which class-per-folder reads."""
    if not files:
        raise ValidationError({"files": "Choose at least one file."})
    staging, rows, rejected = _staging_dir(), [], []
    with files_kept_only_on_success() as staged_files:  # a full disk half-way keeps no staged file, no row
        for n, f in enumerate(files, start=1):
            given = names[n - 1] if names and n - 1 < len(names) and names[n - 1] else f.name
            try:
                name = clean_relative_name(given)
            except Rejected as exc:
                rejected.append((str(given), str(exc)))
                continue
            staged_files.append(_stage_bytes(staging, n, name, f))
            rows.append(_file_row(name, staged_files[-1], f.size, labels_from_folders))
        return _job_create(
            project=project,
            user=user,
            source="api",
            labels_from_folders=labels_from_folders,
            rows=rows,
            rejected=rejected,
        )


# Resumable uploads --------------------------------------------------------------------------


class OffsetMismatch(ValidationError):
    """The chunk does not start where the server's copy ends; ``offset`` says where it does."""

    def __init__(self, offset):
        self.offset = offset
        super().__init__(f"This upload continues at byte {offset}; send the chunk that starts there.")


def upload_create(*, project, user, filename, size) -> Upload:
    try:
        name = clean_relative_name(filename)
    except Rejected as exc:
        raise ValidationError({"filename": str(exc)}) from exc
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise ValidationError({"size": "Give the file's size in bytes."}) from None
    if size < 0:
        raise ValidationError({"size": "The size cannot be negative."})
    limit = settings.DATASET_ZIP_MAX_BYTES if name.lower().endswith(".zip") else settings.DATASET_MAX_FILE_BYTES
    if size > limit:
        raise ValidationError({"size": size_refusal(size, limit, what=name, per="")})
    upload = Upload.objects.create(project=project, created_by=user, filename=name, size=size)
    if size == 0:  # nothing to send: complete at once, so that the job can report it as empty
        upload_assemble(upload=upload)
    return upload


def upload_chunk_append(*, upload, offset, data: bytes) -> Upload:
    """Append ``data`` at ``offset``. A chunk resent after a dropped connection is accepted only
    from the offset the server has; anything else raises OffsetMismatch with that offset."""
    upload.refresh_from_db()
    if upload.job_id or upload.complete:
        raise ValidationError({"upload": "This upload is already complete."})
    if offset != upload.offset:
        raise OffsetMismatch(upload.offset)
    if not data:
        raise ValidationError({"chunk": "The chunk is empty."})
    if offset + len(data) > upload.size:
        raise ValidationError({"chunk": f"The chunk runs past the declared size ({upload.size} bytes)."})
    part = f"uploads/{upload.pk}/{offset:015d}.part"
    if default_storage.exists(part):  # left by an attempt whose answer never reached the client
        default_storage.delete(part)
    saved = storage_save(part, ContentFile(data))
    moved = Upload.objects.filter(pk=upload.pk, offset=offset).update(
        offset=offset + len(data), parts=upload.parts + [saved], updated_at=timezone.now()
    )
    if not moved:
        default_storage.delete(saved)
        upload.refresh_from_db()
        raise OffsetMismatch(upload.offset)
    before = upload.parts
    upload.refresh_from_db()
    if upload.offset == upload.size:
        try:
            upload_assemble(upload=upload)
        except StorageFull:
            # Undo this chunk, so the upload is where it was: the client resends it once there is room.
            Upload.objects.filter(pk=upload.pk, offset=upload.offset).update(offset=offset, parts=before)
            default_storage.delete(saved)
            raise
    return upload


def upload_assemble(*, upload):
    """Join the parts into one staged file and drop the parts."""
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as tmp:
        for part in upload.parts:
            with default_storage.open(part, "rb") as fh:
                for block in iter(lambda: fh.read(1024 * 1024), b""):
                    tmp.write(block)
        tmp.seek(0)
        base = os.path.basename(upload.filename)[-80:] or "file"
        staged = storage_save(f"staging/uploads/{upload.pk}/{base}", File(tmp))
    Upload.objects.filter(pk=upload.pk).update(staged_path=staged)
    for part in upload.parts:
        default_storage.delete(part)
    upload.staged_path = staged


@launches_jobs
@transaction.atomic
def import_uploads_start(*, project, user, upload_ids, labels_from_folders=False) -> ImportJob:
    """Start an ingest job over finished resumable uploads (each used once)."""
    ids = [str(u) for u in upload_ids or []]
    if not ids:
        raise ValidationError({"uploads": "Give the ids of at least one finished upload."})
    try:
        uploads = list(Upload.objects.select_for_update().filter(project=project, pk__in=ids).order_by("created_at"))
    except (ValidationError, ValueError):
        raise ValidationError({"uploads": "Upload ids must be UUIDs."}) from None
    found = {str(u.pk) for u in uploads}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError({"uploads": f"No upload {missing[0]} in this project."})
    errors = [f"{u.filename}: only {u.offset} of {u.size} bytes received." for u in uploads if not u.complete]
    errors += [f"{u.filename}: already imported (job #{u.job_id})." for u in uploads if u.job_id]
    if errors:
        raise ValidationError({"uploads": errors})
    rows = [_file_row(u.filename, u.staged_path, u.size, labels_from_folders) for u in uploads]
    job = _job_create(project=project, user=user, source="upload", labels_from_folders=labels_from_folders, rows=rows)
    Upload.objects.filter(pk__in=[u.pk for u in uploads]).update(job=job)
    return job


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
        from .tasks import ingest_chunk

        for chunk in chunks[1:]:
            dispatch(ingest_chunk, job.pk, chunk[0], chunk[-1])
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
    from .tasks import ingest_job

    ids = list(
        ImportJob.objects.filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).values_list("pk", flat=True)
    )
    for pk in ids:
        ingest_job.apply_async(args=[pk])
    return ids


# Dataset versions ---------------------------------------------------------------------------


def _fractions_clean(fractions):
    if not isinstance(fractions, dict) or set(fractions) != {"train", "val", "test"}:
        raise ValidationError({"fractions": "Give fractions for exactly train, val and test."})
    try:
        out = {k: float(fractions[k]) for k in ("train", "val", "test")}
    except (TypeError, ValueError):
        raise ValidationError({"fractions": "Fractions must be numbers."}) from None
    if any(v < 0 or v > 1 for v in out.values()) or abs(sum(out.values()) - 1.0) > 1e-6:
        raise ValidationError(
            {"fractions": f"Fractions must be between 0 and 1 and sum to 1 (they sum to {sum(out.values()):g})."}
        )
    if out["train"] <= 0:
        raise ValidationError({"fractions": "The train fraction must be above 0."})
    return out


def split_assign(rows, *, seed, fractions):
    """Stratified, seeded split: {sha256: split} for rows of (sha256, label).

    Per label, items are sorted by content hash and shuffled with a generator seeded by (seed,
    label), so the result depends only on the items, their labels and the seed. Counts per split
    are the largest-remainder rounding of n × fraction."""
    by_label = {}
    for sha, label in rows:
        by_label.setdefault(label, []).append(sha)
    out = {}
    for label in sorted(by_label):
        shas = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(shas)
        n = len(shas)
        raw = {k: n * fractions[k] for k in ("train", "val", "test")}
        counts = {k: int(v) for k, v in raw.items()}
        for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), ("train", "val", "test").index(k))):
            if sum(counts.values()) >= n:
                break
            counts[k] += 1
        i = 0
        for k in ("train", "val", "test"):
            for sha in shas[i : i + counts[k]]:
                out[sha] = k
            i += counts[k]
    return out


def content_hash(entries, *, seed, fractions):
    """sha256 over the sorted (item sha256, label, split) lines, the seed and the fractions."""
    h = hashlib.sha256()
    h.update(json.dumps({"seed": seed, "fractions": fractions}, sort_keys=True).encode())
    for sha, label, split in sorted(entries):
        h.update(f"\n{sha}\t{label}\t{split}".encode())
    return h.hexdigest()


def dataset_version_create(
    *, project, user, name="", seed=0, fractions=None, note="", split_from="seeded"
) -> DatasetVersion:
    """Freeze every labeled item of ``project`` with its current label into a new ready version.

    ``split_from="folders"`` keeps the split the upload's folders give (``train/``, ``val/``,
    ``test/`` anywhere in an item's path); items under none of them are split seeded among
    themselves. Items without a label are left out (counted in ``counts['unlabeled']``). All in one
    transaction: a failure leaves no half-built version."""
    fractions = _fractions_clean(fractions or {"train": 0.7, "val": 0.15, "test": 0.15})
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ValidationError({"seed": "The seed must be a whole number."}) from None
    name = clean_name(name)
    if len(name) > 120:
        raise ValidationError({"name": "At most 120 characters."})
    if split_from not in ("seeded", "folders"):
        raise ValidationError({"split_from": f"split_from must be seeded or folders, not {split_from!r}."})
    rows = label_reader().current(project)
    labeled = [(pk, sha, label) for pk, sha, label, _ in rows]
    if not labeled:
        raise ValidationError({"items": "No labeled items yet: label some images before freezing a version."})
    unlabeled = Item.objects.filter(project=project).count() - len(labeled)
    given = {sha: split_from_path(path) for _, sha, _, path in rows} if split_from == "folders" else {}
    if split_from == "folders" and not any(given.values()):
        raise ValidationError(
            {"split_from": "No item sits under a train/, val/ or test/ folder; freeze with a seeded split instead."}
        )
    splits = split_assign(
        [(sha, label) for _, sha, label in labeled if not given.get(sha)], seed=seed, fractions=fractions
    )
    splits.update({sha: s for sha, s in given.items() if s})
    counts = {s: {} for s in ("train", "val", "test")}
    for _, sha, label in labeled:
        counts[splits[sha]][label] = counts[splits[sha]].get(label, 0) + 1
    counts["unlabeled"] = unlabeled
    with transaction.atomic():
        number = (
            DatasetVersion.objects.select_for_update().filter(project=project).aggregate(m=Max("number"))["m"] or 0
        ) + 1
        version = DatasetVersion.objects.create(
            project=project,
            number=number,
            name=name,
            note=note,
            created_by=user,
            seed=seed,
            fractions=fractions,
            split_from=split_from,
            status=VersionStatus.BUILDING,
        )
        VersionItem.objects.bulk_create(
            [VersionItem(version=version, item_id=pk, split=splits[sha], label=label) for pk, sha, label in labeled],
            batch_size=2000,
        )
        version.content_hash = content_hash(
            [(sha, label, splits[sha]) for _, sha, label in labeled],
            seed=seed,
            fractions=fractions if split_from == "seeded" else {**fractions, "split_from": split_from},
        )
        version.item_count, version.counts = len(labeled), counts
        version.classes = sorted({label for _, _, label in labeled})
        version.status = VersionStatus.READY
        version.save()
        audit_record(
            actor=user,
            action="dataset_version.created",
            project=project,
            obj=version,
            data={
                "number": number,
                "items": len(labeled),
                "content_hash": version.content_hash,
                "split_from": split_from,
            },
        )
        version_ready.send(sender=DatasetVersion, version=version, user=user)  # profiling starts its profile
    return version
