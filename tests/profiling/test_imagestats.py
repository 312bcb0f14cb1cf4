"""The pure statistics module: known values on images made here, and the fixed-bin histograms."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from apps.profiling import imagestats as s
from tests.factories import png_bytes

from .conftest import blurred_png, noise_png, reencoded, smooth_png

ROOT = Path(__file__).resolve().parents[2]


def img(arr, mode="L"):
    return Image.fromarray(np.asarray(arr, dtype=np.uint8), mode)


def test_module_imports_no_django():
    code = "import sys; import apps.profiling.imagestats; assert not [m for m in sys.modules if m.startswith('django')]"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_blank_image_has_no_contrast_sharpness_or_entropy():
    st = s.stats_from_bytes(png_bytes(size=(40, 20), value=37))
    assert st["brightness"] == 37 and st["contrast"] == 0 and st["sharpness"] == 0 and st["entropy"] == 0
    assert (st["width"], st["height"], st["aspect"], st["mode"], st["channels"], st["format"]) == (
        40,
        20,
        2.0,
        "L",
        1,
        "PNG",
    )


def test_two_level_image_known_values():
    arr = np.zeros((10, 10), np.uint8)
    arr[:, 5:] = 255
    st = s.image_stats(img(arr))
    assert st["brightness"] == pytest.approx(127.5)
    assert st["contrast"] == pytest.approx(127.5)
    assert st["entropy"] == pytest.approx(1.0)


def test_sharpness_is_variance_of_laplacian():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (50, 60), dtype=np.uint8)
    expected = ndimage.laplace(arr.astype(np.float64))[1:-1, 1:-1].var()
    assert s.laplacian_variance(arr) == pytest.approx(expected)
    assert s.stats_from_bytes(blurred_png(3))["sharpness"] < s.stats_from_bytes(noise_png(3))["sharpness"] / 100


def test_entropy_and_brightness_match_numpy_reference():
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 200, (33, 47), dtype=np.uint8)
    st = s.image_stats(img(arr))
    p = np.bincount(arr.ravel(), minlength=256) / arr.size
    p = p[p > 0]
    assert st["entropy"] == pytest.approx(-(p * np.log2(p)).sum())
    assert st["brightness"] == pytest.approx(arr.mean())
    assert st["contrast"] == pytest.approx(arr.std())


@pytest.mark.parametrize("mode,channels", [("L", 1), ("RGB", 3), ("RGBA", 4)])
def test_mode_and_channels(mode, channels):
    st = s.stats_from_bytes(png_bytes(size=(30, 60), mode=mode, seed=4))
    assert st["mode"] == mode and st["channels"] == channels and st["aspect"] == 0.5


def test_same_pixels_in_another_file_share_the_pixel_hash_and_phash():
    data = smooth_png(5)
    copy = reencoded(data)
    assert copy != data
    a, b = s.stats_from_bytes(data), s.stats_from_bytes(copy)
    assert a["pixel_sha256"] == b["pixel_sha256"] and a["phash"] == b["phash"]
    assert s.stats_from_bytes(smooth_png(6))["pixel_sha256"] != a["pixel_sha256"]
    assert len(a["phash"]) == 64  # 256 bits


def test_unreadable_bytes_raise_with_a_reason():
    with pytest.raises(s.UnreadableImage, match="UnidentifiedImageError|cannot identify"):
        s.stats_from_bytes(b"this is no image")


def test_histogram_uses_fixed_edges_and_keeps_out_of_range_values():
    edges = s.BINS["brightness"]
    assert edges[0] == 0 and edges[-1] == 256 and len(edges) == 33
    counts = s.histogram("brightness", [-5, 0, 3.9, 8, 255, 300, None, float("nan")])
    assert sum(counts) == 6 and counts[0] == 3 and counts[1] == 1 and counts[-1] == 2
    # The same values give the same counts with the edges a stored profile recorded.
    assert s.histogram("brightness", [1, 2, 200], edges=list(edges)) == s.histogram("brightness", [1, 2, 200])


def test_summary_quantiles_and_moments():
    vals = list(range(101))
    sm = s.summary("entropy", [v / 100 * 8 for v in vals])
    assert sm["n"] == 101 and len(sm["quantiles"]) == len(s.QUANTILE_LEVELS)
    assert sm["quantiles"][s.QUANTILE_LEVELS.index(0.5)] == pytest.approx(4.0)
    assert sum(sm["hist"]) == 101 and sm["min"] == 0 and sm["max"] == 8


def test_psi_and_ks():
    a = s.histogram("brightness", np.random.default_rng(0).normal(100, 10, 2000))
    b = s.histogram("brightness", np.random.default_rng(1).normal(100, 10, 2000))
    c = s.histogram("brightness", np.random.default_rng(2).normal(150, 10, 2000))
    assert s.psi(a, a) == 0 and s.psi(a, b) < 0.1 < 1 < s.psi(a, c)
    assert s.ks_from_histograms(a, b) < 0.1 and s.ks_from_histograms(a, c) > 0.9


def test_near_duplicate_pairs_match_brute_force():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, 256)
    hashes = []
    for k in range(40):
        bits = base.copy() if k % 4 == 0 else rng.integers(0, 2, 256)
        flip = rng.choice(256, size=k % 7, replace=False)
        bits[flip] ^= 1
        hashes.append("".join(f"{int(''.join(map(str, bits[i : i + 4])), 2):x}" for i in range(0, 256, 4)))
    got = {(i, j): d for i, j, d in s.near_duplicate_pairs(hashes, 10, chunk=7)}
    want = {
        (i, j): s.hamming(hashes[i], hashes[j])
        for i in range(40)
        for j in range(i + 1, 40)
        if s.hamming(hashes[i], hashes[j]) <= 10
    }
    assert got == want and want


def test_sixteen_bit_images_are_scaled():
    arr = np.arange(100, dtype=np.uint16).reshape(10, 10) * 600
    im = Image.fromarray(arr)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    st = s.stats_from_bytes(buf.getvalue())
    assert 0 < st["brightness"] < 256 and st["channels"] == 1


def test_sampled_stats_equal_the_full_ones_on_a_small_image_and_at_the_grid():
    """Below SAMPLE_PIXELS the sample is every pixel; above, the Laplacian is the exact one at the
    grid's pixels (the full-resolution Laplacian picked at every step-th row and column)."""
    rng = np.random.default_rng(5)
    small = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    full, sampled = s.image_stats(img(small)), s.image_stats_sampled(img(small), small)
    for k in ("brightness", "contrast", "entropy", "sharpness"):
        assert sampled[k] == pytest.approx(full[k], rel=1e-6), k
    big = rng.integers(0, 256, (700, 500), dtype=np.uint8)
    step = max(1, int(np.sqrt(big.size / s.SAMPLE_PIXELS)))
    lap = ndimage.laplace(big.astype(np.float64))[1:-1:step, 1:-1:step]
    assert s.image_stats_sampled(img(big), big)["sharpness"] == pytest.approx(lap.var(), rel=1e-4)


def test_sampled_stats_stay_near_the_profiles_on_real_photographs(screws):
    """Serving's per-prediction statistics are compared bin for bin with the training profile's."""
    folder, rows = screws
    for row in rows[::60]:
        with Image.open(folder / row["path"]) as im:
            im.load()
            gray = s.luminance(im)
            full, sampled = s.image_stats(im), s.image_stats_sampled(im, gray)
        for k, tol in (("brightness", 0.01), ("contrast", 0.01), ("entropy", 0.01), ("sharpness", 0.12)):
            assert sampled[k] == pytest.approx(full[k], rel=tol), (row["path"], k, sampled[k], full[k])
