"""Versions with known contents for the profiling tests, profiled synchronously through the real
services (start → on_commit dispatch captured → execute in-process)."""

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from apps.core.storage import blob_put
from apps.datasets.models import Item
from apps.profiling import services
from tests.factories import label_classes, make_item, make_version, png_bytes


def noise_png(seed, size=(64, 64), mode="L"):
    return png_bytes(size=size, mode=mode, seed=seed)


def smooth_png(seed, size=(64, 64)):
    """A natural-ish picture: smoothed noise, so that perceptual hashes of different seeds differ."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1] // 8, size[0] // 8), dtype=np.uint8)
    im = Image.fromarray(arr, "L").resize(size, Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def reencoded(data):
    """The same pixels saved as a different file (other compression, a text chunk)."""
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "copied")
    with Image.open(io.BytesIO(data)) as im:
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=1, pnginfo=meta)
    return buf.getvalue()


def blurred_png(seed, size=(64, 64)):
    with Image.open(io.BytesIO(noise_png(seed, size))) as im:
        buf = io.BytesIO()
        im.filter(ImageFilter.GaussianBlur(3)).save(buf, format="PNG")
    return buf.getvalue()


def garbage_item(project, name="broken.png"):
    data = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10
    blob = blob_put(data, ext="png", content_type="image/png")
    return Item.objects.create(
        project=project,
        sha256=blob.sha256,
        blob=blob,
        original_name=name,
        width=64,
        height=64,
        mode="L",
        format="PNG",
        bytes=len(data),
    )


def profile_now(version, user=None, django_capture_on_commit_callbacks=None):
    """Start a profile run as the app does and execute it here and now."""
    run = services.profile_run_start(version=version, user=user)
    services.profile_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


@pytest.fixture
def known(project):
    """A version whose oddities are known: one picture duplicated across train and test (as two
    different files), one blank image, one blurred image, one unreadable file and one unlabeled entry."""
    label_classes(project, ["good", "defect"])
    entries, by_name = [], {}

    def add(data, split, label, name):
        item = make_item(project, data, name=name)
        entries.append((item, split, label))
        by_name[name] = item
        return item

    seed = 100
    for split, n_good, n_defect in (("train", 6, 4), ("val", 2, 2), ("test", 2, 2)):
        for label, n in (("good", n_good), ("defect", n_defect)):
            for _ in range(n):
                seed += 1
                add(smooth_png(seed), split, label, f"{split}-{label}-{seed}.png")
    original = smooth_png(7)
    add(original, "train", "good", "dup-original.png")
    add(reencoded(original), "test", "good", "dup-copy.png")
    add(png_bytes(value=0), "train", "defect", "blank.png")
    add(blurred_png(9), "val", "good", "blurred.png")
    broken = garbage_item(project)
    entries.append((broken, "train", "good"))
    by_name["broken.png"] = broken
    add(smooth_png(11), "train", "", "unlabeled.png")
    version = make_version(project, entries)
    version.classes = ["defect", "good"]
    version.save(update_fields=["classes"])
    return version, by_name


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The people fixture makes six users; a fast hasher keeps this shared 2-core machine free."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
