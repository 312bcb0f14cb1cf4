"""The input pipeline: image sources → decoded, resized tensors → cache → shuffle → batch →
augment → prefetch.

A *source* is either a local file path (read by ``tf.io.read_file`` inside the graph, in parallel)
or any key that ``reader(key) -> bytes`` understands (object storage, a database blob…), called
through ``tf.py_function``. Decoding and resizing happen once: the resized images are cached (in
memory, or in ``cache_path``), so later epochs never touch storage again.
"""

import hashlib
import json
import os
import shutil
import uuid

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
# Part of every persistent cache key: bump it when decode_resize changes what it produces.
DECODE_VERSION = 1


class DecodedCache:
    """Decoded, resized images kept on disk across runs (tf.data's file cache), keyed by what they
    are: the sources in order, their labels, the size, the channels and DECODE_VERSION. A run of a
    dataset version already decoded at that size (a rerun, a sweep's next trial) reads the cache in
    its first epoch instead of decoding every photograph again.

    A cache is written under a run-private prefix and published (renamed into place) by
    ``publish()`` only once complete (tf.data writes the index at the end of the first full pass),
    so a reader never sees half a cache and two writers never share files. ``max_bytes`` bounds the
    folder: the least recently used caches go first."""

    def __init__(self, directory, *, max_bytes=20 * 2**30):
        self.dir, self.max_bytes = str(directory), int(max_bytes)
        self._pending = []  # (private prefix, public prefix)
        self.hits = self.misses = 0

    @staticmethod
    def key(sources, labels, image_size, channels):
        h = hashlib.sha256(json.dumps([DECODE_VERSION, int(image_size), int(channels)]).encode())
        for s, label in zip(sources, np.asarray(labels).tolist()):
            h.update(f"{s}\t{label}\n".encode())
        return h.hexdigest()[:40]

    def prefix_for(self, key):
        """The tf.data cache prefix to use for ``key``: the published one when it exists, else a new
        private one (published later)."""
        public = os.path.join(self.dir, key)
        if os.path.exists(public + ".index"):
            self.hits += 1
            try:
                os.utime(public + ".index")  # recently used
            except OSError:
                pass
            return public
        self.misses += 1
        private = os.path.join(self.dir, f"tmp-{uuid.uuid4().hex}", key)
        os.makedirs(os.path.dirname(private), exist_ok=True)
        self._pending.append((private, public))
        return private

    def publish(self):
        """Move every complete private cache into place (a cache another run published meanwhile
        wins); drop the incomplete ones; then trim the folder to ``max_bytes``."""
        for private, public in self._pending:
            folder = os.path.dirname(private)
            try:
                if os.path.exists(private + ".index") and not os.path.exists(public + ".index"):
                    for name in os.listdir(folder):
                        if not name.endswith(".index") and name.startswith(os.path.basename(private)):
                            os.replace(os.path.join(folder, name), os.path.join(self.dir, name))
                    os.replace(private + ".index", public + ".index")  # last: the cache is whole
            except OSError:
                pass
            shutil.rmtree(folder, ignore_errors=True)
        self._pending = []
        self.trim()

    def trim(self):
        entries, names = [], os.listdir(self.dir) if os.path.isdir(self.dir) else []
        for name in names:
            if name.endswith(".index"):
                key = name[: -len(".index")]
                files = [f for f in names if f.startswith(key + ".")]
                size = sum(os.path.getsize(os.path.join(self.dir, f)) for f in files)
                entries.append((os.path.getmtime(os.path.join(self.dir, name)), key, files, size))
        total = sum(e[3] for e in entries)
        for _, _key, files, size in sorted(entries):
            if total <= self.max_bytes:
                break
            for f in sorted(files, key=lambda f: not f.endswith(".index")):  # the index first: no half cache
                try:
                    os.remove(os.path.join(self.dir, f))
                except OSError:
                    pass
            total -= size


def decode_resize(data, *, image_size, channels):
    """PNG/JPEG/BMP/GIF bytes → float32 [H, W, C] in 0..255, resized (antialiased) to a square."""
    return resize_square(
        tf.io.decode_image(data, channels=channels, expand_animations=False), image_size=image_size, channels=channels
    )


def resize_square(image, *, image_size, channels):
    """A decoded image (uint8 [H, W, C] tensor or array) → float32 [S, S, C] in 0..255, resized with
    antialiasing. Training and serving both resize here, so a served input is what the model saw."""
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    image.set_shape((image_size, image_size, channels))
    return image


def random_transpose(x, seed=None):
    """Transpose each image of a square batch with probability 1/2. With both flips this gives all
    eight rotations/reflections of the square, exactly: no interpolation blurs a fine scratch."""
    import tensorflow as tf

    flip = tf.random.uniform([tf.shape(x)[0], 1, 1, 1], seed=seed) < 0.5
    return tf.where(flip, tf.transpose(x, [0, 2, 1, 3]), x)


def augmenter(kind, *, seed=0):
    """A batch-wise augmentation function (x -> x), or None for ``none``.

    ``light``: the eight lossless rotations/reflections (screws lie at any angle, so they keep the
    label). ``strong`` adds any-angle rotation, zoom, contrast and brightness (Keras preprocessing
    layers; they interpolate, so fine defects blur a little).
    """
    import keras

    if kind in (None, "none"):
        return None
    flips = keras.layers.RandomFlip("horizontal_and_vertical", seed=seed)
    extra = None
    if kind == "strong":
        extra = keras.Sequential(
            [
                keras.layers.RandomRotation(0.5, fill_mode="reflect", seed=seed + 1),
                keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 2),
                keras.layers.RandomContrast(0.2, value_range=(0, 255), seed=seed + 3),
                keras.layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 4),
            ],
            name="augment_strong",
        )

    def augment(x):
        x = random_transpose(flips(x, training=True), seed=seed + 5)
        return extra(x, training=True) if extra is not None else x  # nosec B610: a Keras layer named extra, not QuerySet.extra

    return augment


def make_dataset(
    sources,
    labels,
    *,
    image_size,
    channels,
    batch_size,
    augment="none",
    shuffle=False,
    seed=0,
    reader=None,
    cache=True,
    cache_path=None,
    repeat=False,
    disk_cache=None,
):
    """A batched ``tf.data.Dataset`` of (image float32 0..255, label int32).

    ``sources``: file paths (``reader=None``) or keys for ``reader``. ``labels``: class indices.
    ``disk_cache``: a DecodedCache: the decoded images come from (or go to) its folder instead of memory.
    """
    sources = [str(s) for s in sources]
    labels = np.asarray(labels, dtype=np.int32)
    if len(sources) != len(labels):
        raise ValueError(f"{len(sources)} sources but {len(labels)} labels")
    ds = tf.data.Dataset.from_tensor_slices((sources, labels))

    if reader is None:

        def load(source, label):
            return decode_resize(tf.io.read_file(source), image_size=image_size, channels=channels), label
    else:

        def _read(key):
            return reader(key.numpy().decode())

        def load(source, label):
            data = tf.py_function(_read, [source], tf.string)
            data.set_shape(())
            return decode_resize(data, image_size=image_size, channels=channels), label

    ds = ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache and disk_cache is not None and cache_path is None:
        cache_path = disk_cache.prefix_for(DecodedCache.key(sources, labels, image_size, channels))
    if cache:
        ds = ds.cache(cache_path or "")
    if shuffle:
        ds = ds.shuffle(max(len(sources), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    aug = augmenter(augment, seed=seed) if shuffle else None  # never augment evaluation data
    if aug is not None:
        ds = ds.map(lambda x, y: (aug(x), y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def class_weights(labels, num_classes):
    """Balanced weights n / (k · count_c): a rare class counts as much as a common one in the loss."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(float)
    n, k = counts.sum(), float(num_classes)
    return {i: (float(n / (k * c)) if c else 0.0) for i, c in enumerate(counts)}
