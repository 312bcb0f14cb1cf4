"""Checking and reading one image from outside, with the limits from settings: every stage that takes
images (imports, labels' transfers, predictions) decodes them here. Plain functions on bytes: no
database, no storage. ``image_inspect`` is the decode + hash + thumbnail step of every import. Each
refusal is a ``Rejected`` whose message a person can act on.
"""

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageFile, UnidentifiedImageError

# A truncated file must fail loudly, never be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# One pixel limit, the portal's: every image from outside enters through ``image_decode``, which checks
# DATASET_MAX_PIXELS (and the sides) from the header before any pixel is decoded and says so in its own
# words. Pillow's guard (its own limit, its own wording, a warning below it) is off process-wide; the
# images opened elsewhere are blobs that passed here. Set once, not toggled per call across threads.
Image.MAX_IMAGE_PIXELS = None


# The first bytes of archives: an archive is refused as an image, whatever its name says.
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh", b"\xfd7zXZ")


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
