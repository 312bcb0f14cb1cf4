"""Resumable uploads: made, appended chunk by chunk at their offset, assembled and imported."""

import logging
import os
import tempfile

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from apps.core.images import Rejected, size_refusal
from apps.core.jobs import launches_jobs
from apps.core.storage import StorageFull, storage_save

from ..ingest import (
    clean_relative_name,
)
from ..models import (
    ImportJob,
    Upload,
)
from .staging import _file_row, _job_create

log = logging.getLogger(__name__)

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
