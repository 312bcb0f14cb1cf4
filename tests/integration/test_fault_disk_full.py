"""Fault: the disk fills up while an upload or an import is being stored.

A storage that raises OSError(ENOSPC) part-way through a write (tests/integration/fault_storage.py)
stands in for a full disk. Every write of the datasets app goes through one helper
(apps.core.storage.storage_save) that removes what it partly wrote and answers "storage full":
- an import sent with its files answers 507 and leaves no staged file and no row;
- a resumable upload keeps only whole chunks: its offset still matches the bytes stored, and the
  chunk can be sent again once there is room;
- an ingest job in a real worker that runs out of room fails with "Storage full": the batch being
  written leaves no blob file and no row, what was stored before is complete.
"""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.models import Role
from apps.core.images import image_inspect
from apps.core.models import Blob
from apps.datasets.models import ImportFile, ImportJob, Item, Upload
from apps.datasets.services import import_files_start
from tests.factories import ProjectFactory, member, png_bytes

from .conftest import wait_for

pytestmark = pytest.mark.integration
FULL = "tests.integration.fault_storage.FullDiskStorage"


def _files_under(folder):
    root = settings.MEDIA_ROOT / folder
    return (
        sorted(p.relative_to(settings.MEDIA_ROOT).as_posix() for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


def _disk_with_room_for(settings, free_bytes):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": FULL, "OPTIONS": {"location": str(settings.MEDIA_ROOT), "free_bytes": free_bytes}},
    }
    from django.core.files.storage import default_storage

    return default_storage


def test_an_import_and_an_upload_on_a_full_disk_answer_storage_full_and_keep_nothing_partial(
    transactional_db, settings, api
):
    project = ProjectFactory()
    ds = member(project, Role.DATA_SCIENTIST, username="ds-disk")
    client, slug = api(ds), project.slug
    images = [png_bytes(size=(96, 96), seed=i) for i in range(3)]
    storage = _disk_with_room_for(settings, len(images[0]) + len(images[1]) // 2)  # the 2nd file fills it

    r = client.post(
        f"/api/v1/projects/{slug}/data/imports/",
        {"files": [SimpleUploadedFile(f"{i}.png", data, content_type="image/png") for i, data in enumerate(images)]},
        format="multipart",
    )
    assert r.status_code == 507, r.content
    assert r.json()["detail"].startswith("Storage full")
    assert _files_under("") == []  # the whole staged file, and the partial second one, are gone
    assert not ImportJob.objects.exists() and not ImportFile.objects.exists()
    assert not Item.objects.exists() and not Blob.objects.exists()

    # A resumable upload: the first chunk fits, the second does not.
    data = images[2]
    storage.free_bytes = 1000 + 500
    r = client.post(f"/api/v1/projects/{slug}/data/uploads/", {"filename": "big.png", "size": len(data)}, format="json")
    assert r.status_code == 201
    url = f"/api/v1/projects/{slug}/data/uploads/{r.json()['id']}/"
    r = client.generic("PUT", url, data[:1000], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0")
    assert r.status_code == 200 and r.json()["offset"] == 1000
    r = client.generic("PUT", url, data[1000:], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="1000")
    assert r.status_code == 507 and r.json()["detail"].startswith("Storage full")
    upload = Upload.objects.get()
    assert upload.offset == 1000 and len(upload.parts) == 1 and not upload.staged_path
    assert _files_under("") == upload.parts  # the partial second chunk is gone

    storage.free_bytes = 10 * len(data)  # an operator made room: the same chunk now goes through
    r = client.generic("PUT", url, data[1000:], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="1000")
    assert r.status_code == 200 and r.json()["complete"] is True
    upload.refresh_from_db()
    assert _files_under("") == [upload.staged_path]
    assert (settings.MEDIA_ROOT / upload.staged_path).read_bytes() == data


def test_a_worker_that_runs_out_of_room_mid_import_fails_the_job_and_keeps_only_whole_batches(celery_worker_process):
    from apps.datasets.services import BATCH

    project = ProjectFactory()
    ds = member(project, Role.DATA_SCIENTIST, username="ds-disk-worker")
    images = [png_bytes(size=(48, 48), seed=200 + i) for i in range(BATCH + 6)]
    first_batch = sum(len(d) + len(image_inspect(d).thumbnail) for d in images[:BATCH])
    room = first_batch + len(images[BATCH]) // 2  # the second batch's first image does not fit

    job = import_files_start(
        project=project,
        user=ds,
        files=[SimpleUploadedFile(f"img{i:03d}.png", d, content_type="image/png") for i, d in enumerate(images)],
    )
    worker = celery_worker_process(queues=["ingest"], STORAGE_BACKEND=FULL, FAULT_STORAGE_FREE_BYTES=room)

    def finished():
        job.refresh_from_db()
        return job.status in ("done", "failed")

    wait_for(finished, timeout=50, what=f"the import to end; worker said:\n{worker.output()[-3000:]}")
    assert job.status == "failed" and job.error.startswith("Storage full"), job.error
    assert f"{BATCH} of {len(images)} files were imported" in job.error
    assert Item.objects.filter(project=project).count() == BATCH
    assert ImportFile.objects.filter(job=job, result="accepted").count() == BATCH
    blobs = list(Blob.objects.all())
    assert len(blobs) == 2 * BATCH  # each item's image and thumbnail, nothing of the failed batch
    for blob in blobs:
        assert (settings.MEDIA_ROOT / blob.path).stat().st_size == blob.size
    assert _files_under("blobs") == sorted(b.path for b in blobs)  # no file without its row
    assert _files_under("staging") == []  # the failed job's staged files are cleaned up
