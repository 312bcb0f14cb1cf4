"""Content-addressed storage: a file is stored once, under a name derived from its sha256.

Every file the portal writes (upload parts, staged files, blobs of every stage) goes through
``storage_save``: a write that fails leaves no partial file behind, and a full disk (ENOSPC,
EDQUOT) becomes ``StorageFull`` — a clear "storage full" answer (HTTP 507) instead of a trace.
"""

import contextlib
import errno
import hashlib
import logging
import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from .errors import StorageFull
from .models import Blob

log = logging.getLogger(__name__)
FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def _discard(name):
    try:
        if default_storage.exists(name):
            default_storage.delete(name)
    except OSError:  # the cleanup itself failed: say so, the original error matters more
        log.warning("could not delete the partial file %s", name)


@contextlib.contextmanager
def _cleaned_up(target):
    """Around a write of ``target``: on any error the partly written file is deleted, and a full
    disk raises StorageFull."""
    try:
        yield
    except OSError as exc:
        _discard(target)
        if exc.errno in FULL_ERRNOS:
            raise StorageFull() from exc
        raise
    except BaseException:
        _discard(target)
        raise


def storage_save(name, content) -> str:
    """``default_storage.save`` that cleans up after itself: on any error the partly written file
    is deleted, and a full disk raises StorageFull. Returns the name actually used."""
    target = default_storage.get_available_name(name)
    with _cleaned_up(target):
        return default_storage.save(target, content)


def storage_save_copy(name, path) -> str:
    """``storage_save`` of a copy of the local file ``path``. On a local disk the kernel copies it
    (``os.sendfile``: no bytes through Python, ~¼ of a read + write loop's CPU); elsewhere, or where
    the storage turns local shortcuts off (``hard_links = False``), through ``storage_save``."""
    if not getattr(default_storage, "hard_links", True):
        return _save_opened(name, path)
    try:
        target = default_storage.get_available_name(name)
        full = default_storage.path(target)
    except NotImplementedError:  # object storage: no local path
        return _save_opened(name, path)
    with _cleaned_up(target):
        os.makedirs(os.path.dirname(full), exist_ok=True)
    try:
        dst = open(full, "xb")  # x: never over another file
    except FileExistsError:  # a racing writer took the name: fall back to the storage's own naming
        return _save_opened(name, path)
    with _cleaned_up(target), dst, open(path, "rb") as src:
        while os.sendfile(dst.fileno(), src.fileno(), None, 1 << 30):
            pass
    return target


def _save_opened(name, path):
    from django.core.files import File

    with open(path, "rb") as fh:
        return storage_save(name, File(fh))


@contextlib.contextmanager
def files_kept_only_on_success():
    """``with files_kept_only_on_success() as written: written.append(storage_save(...))`` — when
    the block raises, every file it wrote is deleted again."""
    written = []
    try:
        yield written
    except BaseException:
        for name in written:
            _discard(name)
        raise


def blob_name(sha256: str, ext: str) -> str:
    """One level of 256 folders, as git keeps its objects: 1,000,000 blobs are ~4,000 files a
    folder, and an import makes at most 256 folders. (Until 2026-11-24 two levels, 65,536 folders:
    nearly every new blob of an import made one or two, and on the development machine's disk a
    mkdir cost ~0.7 ms, 2 ms per image. Blobs stored then keep their paths; the row says where.)"""
    return f"blobs/{sha256[:2]}/{sha256}.{ext.lstrip('.').lower()}"


def _blob_file_write(name, data, source=None) -> bool:
    """Write a blob's file unless it is there; True when this call wrote it. ``source``, a stored
    file holding exactly ``data``, becomes the blob as a hard link on a local disk."""
    if default_storage.exists(name):
        return False
    if source and _link(source, name):
        return True
    saved = storage_save(name, ContentFile(data))
    if saved != name:  # a racing writer stored the same bytes first; keep one copy
        default_storage.delete(saved)
        return False
    return True


def blob_put(data: bytes, *, ext: str, content_type: str = "") -> Blob:
    """Store ``data`` once; a second call with the same bytes returns the same Blob."""
    sha = hashlib.sha256(data).hexdigest()
    existing = Blob.objects.filter(sha256=sha).first()
    if existing is not None and default_storage.exists(existing.path):
        return existing
    name = blob_name(sha, ext)
    _blob_file_write(name, data)
    try:
        with transaction.atomic():
            blob, _ = Blob.objects.get_or_create(
                sha256=sha, defaults={"path": name, "size": len(data), "content_type": content_type}
            )
    except IntegrityError:
        blob = Blob.objects.get(sha256=sha)
    return blob


def blob_open(blob: Blob):
    return default_storage.open(blob.path, "rb")


def blob_read(blob: Blob) -> bytes:
    with blob_open(blob) as fh:
        return fh.read()


def _link(source, name):
    """Store ``name`` as a hard link to the stored file ``source`` when the storage is a local disk
    (no second copy of the bytes); False where it cannot (object storage, another filesystem) or
    the storage says not to (``hard_links = False``)."""
    if not getattr(default_storage, "hard_links", True):
        return False
    try:
        target = default_storage.path(name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(default_storage.path(source), target)
        return True
    except (NotImplementedError, OSError):
        return False


def blobs_put(files):
    """``blob_put`` for many files at once: [(data, ext, content_type[, sha256[, source]])] -> [Blob],
    in order. ``source``, when given, is a stored file holding exactly ``data`` (a staged upload):
    on a local disk the blob becomes a hard link to it instead of a second copy.

    One query finds the blobs already stored and one inserts the new rows; the files are written
    before the rows, so a row never points at a missing file. Call it inside a transaction."""
    shas = [f[3] if len(f) > 3 and f[3] else hashlib.sha256(f[0]).hexdigest() for f in files]
    known = {b.sha256: b for b in Blob.objects.filter(sha256__in=set(shas))}
    new = {}
    with files_kept_only_on_success() as written:  # a full disk half-way: no file of this call stays
        for sha, (data, ext, ctype, *rest) in zip(shas, files):
            if sha in known or sha in new:
                continue
            name = blob_name(sha, ext)
            if _blob_file_write(name, data, source=rest[1] if len(rest) > 1 else None):
                written.append(name)
            new[sha] = Blob(sha256=sha, path=name, size=len(data), content_type=ctype)
    if new:
        Blob.objects.bulk_create(new.values(), ignore_conflicts=True)
        known.update({b.sha256: b for b in Blob.objects.filter(sha256__in=list(new))})
    return [known[sha] for sha in shas]
