"""Content-addressed storage: a staged upload becomes its blob without a second copy on local disk."""

import hashlib
import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.core.models import Blob
from apps.core.storage import blob_read, blobs_put
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
    blob, _ = blobs_put([(data, "png", "image/png", None, "staging/none/missing.png"), (b"thumb", "jpg", "image/jpeg")])
    assert blob_read(blob) == data and blob.sha256 == hashlib.sha256(data).hexdigest()
    assert os.stat(default_storage.path(blob.path)).st_nlink == 1


def test_a_folder_file_is_staged_as_a_kernel_copy_never_over_another_file(db, tmp_path):
    from apps.core.storage import storage_save_copy

    data = png_bytes(seed=43) * 50  # ~ a real image's size
    src = tmp_path / "screw.png"
    src.write_bytes(data)
    first = storage_save_copy("staging/k/000001-screw.png", src)
    again = storage_save_copy("staging/k/000001-screw.png", src)  # the name is taken: a new one
    assert first == "staging/k/000001-screw.png" and again != first
    for name in (first, again):
        with default_storage.open(name, "rb") as fh:
            assert fh.read() == data
        assert os.stat(default_storage.path(name)).st_ino != os.stat(src).st_ino  # a copy, not a link
    src.write_bytes(b"changed later")  # the source changing afterwards does not touch the staged copy
    with default_storage.open(first, "rb") as fh:
        assert fh.read() == data


def test_a_storage_without_local_shortcuts_stages_through_its_own_save(db, tmp_path, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    from apps.core import storage

    class NoShortcuts(FileSystemStorage):
        hard_links = False

    saved = []
    monkeypatch.setattr(storage, "default_storage", NoShortcuts(location=default_storage.location))
    real = storage.storage_save
    monkeypatch.setattr(storage, "storage_save", lambda name, content: saved.append(name) or real(name, content))
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(seed=44))
    name = storage.storage_save_copy("staging/s/000001-a.png", src)
    assert saved == ["staging/s/000001-a.png"] and default_storage.open(name, "rb").read() == src.read_bytes()
