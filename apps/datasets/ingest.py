"""What an import reads besides single images (``apps.core.images`` checks and decodes those): names and
folders (labels and splits from paths) and the inside of a zip archive, with the limits from settings.
``archive_scan`` decides which entries of a zip may be unpacked. Plain functions on bytes and names: no
database, no storage. Each refusal is a ``Rejected`` whose message a person can act on.
"""

import posixpath
import stat
import zipfile
from dataclasses import dataclass

from django.conf import settings

from apps.core.images import Rejected, check_size, size_refusal
from apps.core.text import clean_name

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ARCHIVE_EXTENSIONS = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
# Entries an OS adds to an archive by itself; skipped without a word.
_NOISE = ("__MACOSX/", ".DS_Store", "Thumbs.db")


def clean_relative_name(name: str) -> str:
    """A path as given by a client or an archive, made relative and safe (control and bidi characters
    removed from every part: ``apps.core.text.clean_name``), or Rejected."""
    if "\x00" in (name or ""):
        raise Rejected("The name contains a NUL byte.")
    raw = "/".join(clean_name(p) for p in (name or "").replace("\\", "/").split("/"))
    if not raw.strip() or raw.endswith("/"):
        raise Rejected("The file has no name.")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise Rejected(f"Absolute path {name!r} is not allowed; entries must be relative.")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Rejected(f"Path {name!r} escapes its folder (../); refused.")
    return "/".join(parts)


SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def split_from_path(name: str) -> str:
    """The split a path's folders name (``…/train/…`` → train, ``val``/``validation`` → val,
    ``test`` → test; the innermost wins), or "" when none does."""
    for part in reversed(posixpath.dirname(name).split("/")):
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return ""


def label_from_path(name: str) -> str:
    """Class-per-subfolder: the label is the image's innermost folder that does not name a split
    (``train/good/a.png`` and ``good/train/a.png`` are both "good")."""
    for part in reversed(posixpath.dirname(name).split("/")):
        if part and part.lower() not in SPLIT_FOLDERS:
            return part
    return ""


def is_noise(name: str) -> bool:
    base = posixpath.basename(name)
    return name.startswith("__MACOSX/") or base.startswith("._") or base in _NOISE


def is_image_name(name: str) -> bool:
    """An image by its extension (what a folder import and a zip import take; the rest is skipped)."""
    return posixpath.splitext(name.lower())[1] in IMAGE_EXTENSIONS


def is_archive_name(name: str) -> bool:
    lower = name.lower()
    return any(lower.endswith(ext) for ext in ARCHIVE_EXTENSIONS)


@dataclass
class ArchiveEntry:
    member: str  # the name inside the archive (as stored)
    name: str  # cleaned relative name
    size: int
    reason: str = ""  # non-empty: rejected before reading


def archive_scan(fh) -> tuple[list[ArchiveEntry], int]:
    """(entries, skipped): the image entries of the zip in ``fh``, each either fine to read or carrying
    its refusal, and how many other files it holds (not images: skipped quietly, as a folder import
    skips them; an archive inside it is still an entry, refused by name).

    Raises Rejected for the whole archive: not a zip, corrupt, too many entries, or more bytes
    unpacked than allowed (zip bomb).
    """
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise Rejected(f"Not a readable zip archive ({exc}); nothing in it was imported.") from exc
    files = [i for i in infos if not i.is_dir()]
    if len(files) > settings.DATASET_ZIP_MAX_ENTRIES:
        raise Rejected(f"The archive holds {len(files):,} files; the limit is {settings.DATASET_ZIP_MAX_ENTRIES:,}.")
    total = sum(i.file_size for i in files)
    if total > settings.DATASET_ZIP_MAX_UNCOMPRESSED_BYTES:
        raise Rejected(
            size_refusal(total, settings.DATASET_ZIP_MAX_UNCOMPRESSED_BYTES, what="Unpacked, the archive", per="")[:-1]
            + " (zip bomb guard). Nothing was imported."
        )
    out, skipped, max_ratio = [], 0, settings.DATASET_ZIP_MAX_RATIO
    for info in files:
        if is_noise(info.filename):
            continue
        if not is_image_name(info.filename) and not is_archive_name(info.filename):
            skipped += 1  # a README, a CSV: counted, never a "rejected" row
            continue
        entry = ArchiveEntry(member=info.filename, name=info.filename, size=info.file_size)
        try:
            entry.name = clean_relative_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise Rejected("Symbolic links inside archives are not followed.")
            if is_archive_name(entry.name):
                raise Rejected("Archives inside archives are not unpacked.")
            if info.flag_bits & 0x1:
                raise Rejected("The entry is encrypted.")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1024 * 1024 and ratio > max_ratio:
                raise Rejected(f"It compresses {ratio:,.0f}:1, beyond the {max_ratio}:1 limit (zip bomb guard).")
            check_size(info.file_size)
        except Rejected as exc:
            entry.reason = str(exc)
        out.append(entry)
    return out, skipped


def archive_read(zf: zipfile.ZipFile, member: str) -> bytes:
    """Read one entry, never more than the size limit + 1 bytes whatever its header claims."""
    limit = settings.DATASET_MAX_FILE_BYTES
    try:
        with zf.open(member) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise Rejected(f"The archive entry is corrupt ({exc}).") from exc
    if len(data) > limit:
        claimed = zf.getinfo(member).file_size
        # The header's size when it is the truth we saw (over the limit); else only the bound is known.
        check_size(claimed if claimed > limit else len(data), at_least=claimed <= limit)
    check_size(len(data))
    return data
