"""The decoded-image cache kept across runs (apps.training.ml.data.DecodedCache): a second pipeline
over the same sources at the same size reads the first one's cache (same tensors, no decoding: the
source files may even be gone), a different size or label list is another cache, an incomplete
cache is never published, and the folder is trimmed oldest first."""

import os

import numpy as np
import pytest
from PIL import Image

from apps.training.ml.data import DecodedCache, make_dataset


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i in range(6):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((40, 30), 30 * i, np.uint8)).save(p)
        paths.append(str(p))
    return paths


def _all(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def test_a_second_run_reads_the_first_runs_cache(photos, tmp_path):
    labels = [0, 1, 0, 1, 0, 1]
    first = DecodedCache(tmp_path / "cache")
    want = _all(make_dataset(photos, labels, image_size=16, channels=1, batch_size=4, disk_cache=first))
    assert (first.hits, first.misses) == (0, 1)
    first.publish()
    published = sorted(os.listdir(tmp_path / "cache"))
    assert any(n.endswith(".index") for n in published) and not any(n.startswith("tmp-") for n in published)
    for p in photos:  # the cache alone answers: nothing is read or decoded again
        os.remove(p)
    second = DecodedCache(tmp_path / "cache")
    got = _all(make_dataset(photos, labels, image_size=16, channels=1, batch_size=4, disk_cache=second))
    assert (second.hits, second.misses) == (1, 0)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_another_size_or_labels_is_another_cache_and_half_a_cache_is_never_published(photos, tmp_path):
    c = DecodedCache(tmp_path / "cache")
    assert DecodedCache.key(photos, [0] * 6, 16, 1) != DecodedCache.key(photos, [0] * 6, 32, 1)
    assert DecodedCache.key(photos, [0] * 6, 16, 1) != DecodedCache.key(photos, [1] + [0] * 5, 16, 1)
    ds = make_dataset(photos, [0] * 6, image_size=16, channels=1, batch_size=2, disk_cache=c)
    next(iter(ds))  # one batch of three: the first pass never finished
    c.publish()
    assert not any(n.endswith(".index") for n in os.listdir(tmp_path / "cache"))


def test_the_folder_is_trimmed_least_recently_used_first(photos, tmp_path):
    caches = []
    for size in (8, 12, 16):
        c = DecodedCache(tmp_path / "cache")
        _all(make_dataset(photos, [0] * 6, image_size=size, channels=1, batch_size=6, disk_cache=c))
        c.publish()
        caches.append(DecodedCache.key(photos, [0] * 6, size, 1))
        os.utime(tmp_path / "cache" / f"{caches[-1]}.index", (1000 + size, 1000 + size))
    c = DecodedCache(tmp_path / "cache", max_bytes=16 * 16 * 4 * 6 + 4096)  # room for the newest one only
    c.trim()
    left = {n.split(".")[0] for n in os.listdir(tmp_path / "cache")}
    assert left == {caches[-1]}
