"""Content-addressed storage: a staged upload becomes its blob without a second copy on local disk."""
import hashlib
import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.datasets.models import Blob
from apps.datasets.storage import blob_read, blobs_put
from tests.factories import png_bytes


def test_a_staged_file_becomes_the_blob_as_a_hard_link_and_outlives_the_staging(db):
    data = png_bytes(seed=41)
    staged = default_storage.save("staging/t/000001-a.png", ContentFile(data))
    [blob] = blobs_put([(data, "png", "image/png", hashlib.sha256(data).hexdigest(), staged)])
    assert os.stat(default_storage.path(blob.path)).st_ino == os.stat(default_storage.path(staged)).st_ino
    default_storage.delete(staged)  # the job's staging cleanup
    assert blob_read(Blob.objects.get(pk=blob.pk)) == data


def test_without_a_usable_source_the_bytes_are_written(db):
    data = png_bytes(seed=42)
    blob, _ = blobs_put([(data, "png", "image/png", None, "staging/none/missing.png"),
                        (b"thumb", "jpg", "image/jpeg")])
    assert blob_read(blob) == data and blob.sha256 == hashlib.sha256(data).hexdigest()
    assert os.stat(default_storage.path(blob.path)).st_nlink == 1
