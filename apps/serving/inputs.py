"""What a prediction request carries, checked where it enters: the image files (multipart or base64
JSON) → decoded with the upload checks (``apps.core.images.image_decode``) → measured
(``imagestats.image_stats_sampled``) → resized exactly as training resized
(``apps.training.ml.data.resize_square``). Nothing here touches the model or the database."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from rest_framework.parsers import BaseParser

from apps.core.images import Rejected, image_decode, size_refusal
from apps.profiling import imagestats


class InputError(Exception):
    """A request's input is unusable; ``errors`` name the file/field and the reason; ``status`` is the
    HTTP status to answer with (400, or 413 for something too large)."""

    def __init__(self, errors, status=400):
        super().__init__("; ".join(f"{e.get('field') or e.get('file')}: {e['error']}" for e in errors))
        self.errors, self.status = errors, status


@dataclass
class RawInput:
    index: int
    name: str
    data: bytes


@dataclass
class Decoded:
    """One checked input: its bytes, sha256, statistics and decoded image (pixels made on demand)."""

    index: int
    name: str
    data: bytes
    sha256: str
    format: str
    stats: dict
    image: object  # the loaded PIL image
    gray: np.ndarray  # its luminance, uint8 [H, W] (the profile's; also the 1-channel model input)
    _resized: dict = field(default_factory=dict)

    def pixels(self, channels: int) -> np.ndarray:
        """uint8 [H, W, C]: grayscale is the profile's luminance; RGB drops alpha, as
        tf.io.decode_image(channels=3) does."""
        return self.gray[..., None] if int(channels) == 1 else np.asarray(self.image.convert("RGB"))

    def array(self, *, image_size: int, channels: int) -> np.ndarray:
        """The float32 [S, S, C] model input, resized as training did (computed once per spec)."""
        key = (int(image_size), int(channels))
        if key not in self._resized:
            self._resized[key] = resizer(*key)(self.pixels(channels)).numpy()
        return self._resized[key]


_resizers = {}


def resizer(image_size: int, channels: int):
    """The training resize (``apps.training.ml.data.resize_square``) as one compiled graph call for
    uint8 [H, W, C] images of any size: the same operations, without a Python dispatch per op."""
    key = (int(image_size), int(channels))
    if key not in _resizers:
        import tensorflow as tf

        from apps.training.ml.data import resize_square

        # Its concrete function: no Python-side input binding per call (~0.2 ms an image here).
        _resizers[key] = tf.function(
            lambda img: resize_square(img, image_size=key[0], channels=key[1]),
            input_signature=[tf.TensorSpec([None, None, key[1]], tf.uint8)],
        ).get_concrete_function()
    return _resizers[key]


class RawBody(bytes):
    """A request body that is one image's bytes."""


class ImageBodyParser(BaseParser):
    """DRF parser for ``Content-Type: image/*`` or ``application/octet-stream``: the body is the image
    (no multipart or base64 to unpack: the cheapest way to send one image)."""

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return RawBody(stream.read() if stream is not None else b"")


class OctetStreamParser(ImageBodyParser):
    media_type = "application/octet-stream"


def raw_inputs_from_request(request) -> list[RawInput]:
    """The images of a request: the body itself (``Content-Type: image/png`` …, one image), multipart
    files (any field name, several allowed), or JSON ``{"image": "<base64>"}`` /
    ``{"images": ["<base64>" | {"name": …, "data": "<base64>"}, …]}``."""
    if isinstance(request.data, RawBody):  # the image itself as the body (Content-Type: image/…)
        name = request.headers.get("X-Filename") or "image"
        return [RawInput(0, name[:200], bytes(request.data))]
    files = [f for name in request.FILES for f in request.FILES.getlist(name)]
    limit = settings.SERVING_MAX_IMAGES
    out = []
    if files:
        if len(files) > limit:
            raise InputError([{"field": "images", "error": f"{len(files)} images sent; at most {limit} per request."}])
        for i, f in enumerate(files):
            if f.size > settings.DATASET_MAX_FILE_BYTES:
                raise InputError(
                    [{"file": f.name, "index": i, "error": size_refusal(f.size, settings.DATASET_MAX_FILE_BYTES)}],
                    status=413,
                )
            out.append(RawInput(i, f.name or f"image-{i}", f.read()))
        return out
    data = request.data if isinstance(request.data, dict) else {}
    items = data.get("images")
    if items is None and "image" in data:
        items = [data["image"]]
    if not items:
        raise InputError(
            [
                {
                    "field": "images",
                    "error": (
                        'No image in the request: send multipart files, or JSON {"images": ["<base64>", …]} '
                        'or {"image": "<base64>"}.'
                    ),
                }
            ]
        )
    if not isinstance(items, list):
        raise InputError(
            [{"field": "images", "error": "images must be a list of base64 strings or {name, data} objects."}]
        )
    if len(items) > limit:
        raise InputError([{"field": "images", "error": f"{len(items)} images sent; at most {limit} per request."}])
    errors = []
    for i, item in enumerate(items):
        name, b64 = f"images[{i}]", item
        if isinstance(item, dict):
            name, b64 = str(item.get("name") or name), item.get("data")
        if not isinstance(b64, str) or not b64:
            errors.append({"field": f"images[{i}]", "error": "expected a base64 string (or {name, data})."})
            continue
        if b64.startswith("data:") and "," in b64:  # a data: URL as a browser makes it
            b64 = b64.split(",", 1)[1]
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            errors.append({"field": f"images[{i}]", "file": name, "error": f"not valid base64 ({exc})."})
            continue
        out.append(RawInput(i, name, raw))
    if errors:
        raise InputError(errors)
    return out


def decode_input(raw: RawInput) -> Decoded:
    """Check and decode one input like an upload (Rejected → InputError naming the file) and measure
    the profile's statistics on it."""
    if len(raw.data) > settings.DATASET_MAX_FILE_BYTES:
        raise InputError(
            [
                {
                    "file": raw.name,
                    "index": raw.index,
                    "error": size_refusal(len(raw.data), settings.DATASET_MAX_FILE_BYTES),
                }
            ],
            status=413,
        )
    try:
        img = image_decode(raw.data)
    except Rejected as exc:
        raise InputError([{"file": raw.name, "index": raw.index, "error": str(exc)}]) from None
    fmt = (img.format or "").upper()
    gray = imagestats.luminance(img)
    stats = imagestats.image_stats_sampled(img, gray, file_bytes=len(raw.data), file_format=fmt)
    return Decoded(
        index=raw.index,
        name=raw.name,
        data=raw.data,
        sha256=hashlib.sha256(raw.data).hexdigest(),
        format=fmt,
        stats=stats,
        image=img,
        gray=gray,
    )


def decode_inputs(raws) -> list[Decoded]:
    """Every input checked before any reaches a model: one bad file fails the request, naming it."""
    decoded, errors, status = [], [], 400
    for raw in raws:
        try:
            decoded.append(decode_input(raw))
        except InputError as exc:
            errors += exc.errors
            status = max(status, exc.status)
    if errors:
        raise InputError(errors, status=status)
    return decoded
