"""Imports started: files from a folder or a request staged through storage, an import job made
for them and dispatched."""

import logging
import os
import uuid
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from apps.core.audit import audit_record
from apps.core.images import Rejected
from apps.core.jobs import dispatch, launches_jobs
from apps.core.storage import files_kept_only_on_success, storage_save, storage_save_copy

from ..ingest import (
    IMAGE_EXTENSIONS,
    clean_relative_name,
    is_archive_name,
    label_from_path,
)
from ..models import (
    ImportFile,
    ImportFileResult,
    ImportJob,
    Upload,
)

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
        dispatch("apps.datasets.tasks.ingest_job", job.pk, job=job, on_unavailable=lambda: _import_unqueued(job.pk))
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
