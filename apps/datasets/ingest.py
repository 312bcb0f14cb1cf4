"""Checking and reading one image, and looking inside a zip archive, with the limits from settings.

Plain functions on bytes: no database, no storage. ``image_inspect`` is the decode + hash +
thumbnail step of every import; ``archive_scan`` decides which entries of a zip may be unpacked.
Each refusal is a ``Rejected`` whose message a person can act on.
"""

import hashlib
import io
import posixpath
import stat
import zipfile
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageFile, UnidentifiedImageError

from apps.core.text import clean_name

# A truncated file must fail loudly, never be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# One pixel limit, the portal's: every image from outside enters through ``image_decode``, which checks
# DATASET_MAX_PIXELS (and the sides) from the header before any pixel is decoded and says so in its own
# words. Pillow's guard (its own limit, its own wording, a warning below it) is off process-wide; the
# images opened elsewhere are blobs that passed here. Set once, not toggled per call across threads.
Image.MAX_IMAGE_PIXELS = None

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ARCHIVE_EXTENSIONS = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh", b"\xfd7zXZ")
# Entries an OS adds to an archive by itself; skipped without a word.
_NOISE = ("__MACOSX/", ".DS_Store", "Thumbs.db")


class Rejected(Exception):
    """The input cannot be ingested; ``str(exc)`` says why, in words for a person."""


@dataclass
class Inspected:
    sha256: str
    width: int
    height: int
    mode: str
    format: str
    bytes: int
    thumbnail: bytes
    thumbnail_ext: str


def human_bytes(n: int) -> str:
    """A size in decimal units, the one convention the portal states sizes in (1 MB = 1,000,000
    bytes, as disks and browsers count): 812 bytes, 4.2 kB, 60.0 MB, 2.0 GB."""
    n = int(n)
    if n < 1000:
        return f"{n} byte{'' if n == 1 else 's'}"
    for unit, size in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < size * 1000 or unit == "GB":
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def size_refusal(size: int, limit: int, *, what="The file", per=" per image", at_least=False) -> str:
    """One wording for every over-size refusal: the real size (or "more than" when only a bound is
    known) and the limit, each in decimal units and in exact bytes."""
    if at_least:
        return f"{what} is larger than the limit of {human_bytes(limit)} ({limit:,} bytes){per}; reading stopped there."
    return f"{what} is {human_bytes(size)} ({size:,} bytes); the limit is {human_bytes(limit)} ({limit:,} bytes){per}."


def check_size(size: int, *, at_least=False):
    """``size`` is the real size, or with ``at_least`` a lower bound (a read stopped at limit + 1)."""
    if size == 0:
        raise Rejected("The file is empty (0 bytes).")
    limit = settings.DATASET_MAX_FILE_BYTES
    if size > limit:
        raise Rejected(size_refusal(size, limit, at_least=at_least))


def check_shape(w: int, h: int):
    """Each side and the aspect ratio within the portal's limits (a 200,000 × 1 strip is no photograph)."""
    side, aspect = settings.DATASET_MAX_SIDE, settings.DATASET_MAX_ASPECT
    if w < 1 or h < 1:
        raise Rejected(f"The image is {w}×{h} pixels; both sides must be at least 1.")
    if max(w, h) > side:
        raise Rejected(f"The image is {w:,}×{h:,} pixels; each side may be at most {side:,} pixels.")
    if max(w, h) / min(w, h) > aspect:
        raise Rejected(
            f"The image is {w:,}×{h:,} pixels, {max(w, h) / min(w, h):,.0f}:1; the longer side may be "
            f"at most {aspect:g} times the shorter."
        )


def check_pixels(w: int, h: int):
    limit = settings.DATASET_MAX_PIXELS
    if w * h > limit:
        raise Rejected(
            f"The image is {w:,}×{h:,} = {w * h:,} pixels; the limit is {limit:,} pixels (decompression bomb guard)."
        )


def _thumbnail(im: Image.Image) -> tuple[bytes, str]:
    px = settings.DATASET_THUMBNAIL_PX
    # In place when the mode allows: the full-size pixels are not needed after this.
    thumb = im if im.mode in ("L", "RGB") else im.convert("RGBA" if "A" in im.getbands() or im.mode == "P" else "RGB")
    thumb.thumbnail((px, px))
    buf = io.BytesIO()
    if thumb.mode == "RGBA":
        thumb.save(buf, format="PNG", optimize=False)
        return buf.getvalue(), "png"
    thumb.save(buf, format="JPEG", quality=85)
    return buf.getvalue(), "jpg"


def image_decode(data: bytes) -> Image.Image:
    """Decode ``data`` fully with the upload limits, or raise Rejected: empty, too big, an archive,
    not an image, unsupported format, too many pixels (decompression bomb), truncated or corrupt.
    Returns the loaded image (the caller closes it). Uploads and the prediction API both check here."""
    check_size(len(data))
    if data[:4] in ARCHIVE_MAGIC or data[:3] in ARCHIVE_MAGIC or data[:2] == b"\x1f\x8b":
        raise Rejected("This is an archive, not an image; archives inside archives are not unpacked.")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise Rejected("Not an image: its content is no image format we can read, whatever its name says.") from None
    except Exception as exc:  # a damaged header can raise nearly anything inside a decoder
        raise Rejected(f"Not a readable image: {exc}") from exc
    try:
        fmt = (im.format or "").upper()
        allowed = [f.upper() for f in settings.DATASET_ALLOWED_FORMATS]
        if fmt not in allowed:
            raise Rejected(f"Format {fmt or 'unknown'} is not accepted; allowed formats: {', '.join(allowed)}.")
        w, h = im.size
        check_pixels(w, h)
        check_shape(w, h)
        try:
            im.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise Rejected(f"The image data is truncated or corrupt ({exc}).") from exc
    except BaseException:
        im.close()
        raise
    return im


def image_inspect(data: bytes) -> Inspected:
    """Decode ``data`` fully (``image_decode``: every upload check), hash it and make its thumbnail."""
    with image_decode(data) as im:
        w, h, mode, fmt = im.width, im.height, im.mode, (im.format or "").upper()
        thumb, thumb_ext = _thumbnail(im)
        return Inspected(
            sha256=hashlib.sha256(data).hexdigest(),
            width=w,
            height=h,
            mode=mode,
            format=fmt,
            bytes=len(data),
            thumbnail=thumb,
            thumbnail_ext=thumb_ext,
        )


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
