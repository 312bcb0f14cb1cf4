"""Content-addressed storage: a file is stored once, under a name derived from its sha256."""
import hashlib
import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from .models import Blob


def blob_name(sha256: str, ext: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext.lstrip('.').lower()}"


def blob_put(data: bytes, *, ext: str, content_type: str = "") -> Blob:
    """Store ``data`` once; a second call with the same bytes returns the same Blob."""
    sha = hashlib.sha256(data).hexdigest()
    existing = Blob.objects.filter(sha256=sha).first()
    if existing is not None and default_storage.exists(existing.path):
        return existing
    name = blob_name(sha, ext)
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # a racing writer stored the same bytes first; keep one copy
            default_storage.delete(saved)
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
    (no second copy of the bytes); False where it cannot (object storage, another filesystem)."""
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
    for sha, (data, ext, ctype, *rest) in zip(shas, files):
        if sha in known or sha in new:
            continue
        name = blob_name(sha, ext)
        source = rest[1] if len(rest) > 1 else None
        if not default_storage.exists(name) and not (source and _link(source, name)):
            saved = default_storage.save(name, ContentFile(data))
            if saved != name:  # a racing writer stored the same bytes first; keep one copy
                default_storage.delete(saved)
        new[sha] = Blob(sha256=sha, path=name, size=len(data), content_type=ctype)
    if new:
        Blob.objects.bulk_create(new.values(), ignore_conflicts=True)
        known.update({b.sha256: b for b in Blob.objects.filter(sha256__in=list(new))})
    return [known[sha] for sha in shas]
