"""Training throughput through the portal's input pipeline, reading the screw images from Django
storage (decode, resize, cache, augment, prefetch), beside the same model fit on the same images
already in memory as tensors, in the same run.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/training_input.py [--quick]

Both fits run the same epochs with the same augmentation; the pipeline's figures include their
first epoch. The pipeline runs twice, as the portal's runs do, with the decoded-image cache kept
across runs (``DecodedCache``, TRAINING_CACHE_DIR): the **first run** of a dataset version at a
size reads and decodes every image from storage in its first epoch (later epochs read the cache it
wrote); a **later run** of the same data at the same size (a rerun, a sweep's next trial) reads the
cache from its first epoch on. The RESULT is the later run's figure; the first run's is printed
beside it.
"""

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlportal.settings")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._screws import load_manifest, stratified_split


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="160 images, 6 epochs")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--smoke", action="store_true", help="32 images, 2 epochs (seconds; CI runs it)")
    args = ap.parse_args()
    # 30 epochs: a short real run (the default recipe runs 100+). The pipeline decodes every
    # 1024x1024 PNG once, in its first epoch; the ratio printed per phase shows where time goes.
    epochs = args.epochs or (2 if args.smoke else 6 if args.quick else 30)

    media = tempfile.mkdtemp(prefix="bench-media-")
    os.environ["MEDIA_ROOT"] = media
    import django

    django.setup()
    import numpy as np
    import tensorflow as tf
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from apps.training.ml import builders, data
    from apps.training.ml.config import TrainConfig
    from apps.training.ml.run import set_seeds
    from apps.training.services import storage_sources

    rows = load_manifest()
    train = stratified_split(rows, seed=0)["train"]
    if args.quick or args.smoke:
        train = train[: 32 if args.smoke else 160]
    classes = sorted({lab for _, lab in rows})
    labels = [classes.index(lab) for _, lab in train]
    # Store the images the way the portal does (content-addressed names in Django's default storage).
    names = []
    for path, _ in train:
        blob = Path(path).read_bytes()
        sha = hashlib.sha256(blob).hexdigest()
        names.append(default_storage.save(f"blobs/{sha[:2]}/{sha}.png", ContentFile(blob)))
    sources, reader = storage_sources(names)
    local = reader is None
    cfg = TrainConfig(
        image_size=args.image_size, channels=1, batch_size=16, augmentation="light", epochs=epochs, early_stopping=False
    )
    n = len(train)
    print(
        f"{n} training images from {'local' if local else 'remote'} storage, {args.image_size} px, "
        f"{epochs} epochs, {cfg.architecture}, batch {cfg.batch_size}; TF {tf.__version__}, "
        f"{os.cpu_count()} CPUs"
    )

    # Reference: the same images decoded and resized beforehand, held in memory as tensors.
    decoded = np.stack(
        [
            data.decode_resize(tf.io.read_file(s), image_size=cfg.image_size, channels=1).numpy()
            for s in [str(Path(p)) for p, _ in train]
        ]
    )
    aug = data.augmenter("light", seed=cfg.seed)
    mem = (
        tf.data.Dataset.from_tensor_slices((decoded, np.asarray(labels, np.int32)))
        .shuffle(n, seed=cfg.seed)
        .batch(cfg.batch_size)
        .map(lambda x, y: (aug(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    mem_seconds, mem_epochs = timed_fit(builders, cfg, classes, mem, epochs, set_seeds, mem)

    cache_dir = tempfile.mkdtemp(prefix="bench-decoded-")
    mem_ips = n * epochs / mem_seconds
    print(f"in-memory tensors:            {mem_seconds:.1f} s, {mem_ips:.1f} images/s")
    figures = {}
    for which in ("first run", "later run"):
        cache = data.DecodedCache(cache_dir)
        pipe = data.make_dataset(
            sources,
            labels,
            image_size=cfg.image_size,
            channels=1,
            batch_size=cfg.batch_size,
            augment="light",
            shuffle=True,
            seed=cfg.seed,
            reader=reader,
            disk_cache=cache,
        )
        pipe_seconds, pipe_epochs = timed_fit(builders, cfg, classes, pipe, epochs, set_seeds, mem)
        cache.publish()
        pipe_ips = n * epochs / pipe_seconds
        figures[which] = pipe_ips
        first = pipe_epochs[0] and mem_epochs[0] / pipe_epochs[0]
        steady = sum(mem_epochs[1:]) / max(sum(pipe_epochs[1:]), 1e-9)
        print(
            f"portal pipeline, {which} ({'decodes from storage' if cache.misses else 'cache of the first run'}): "
            f"{pipe_seconds:.1f} s, {pipe_ips:.1f} images/s, {pipe_ips / mem_ips:.3f} of in-memory; "
            f"first epoch {first:.3f}, later epochs {steady:.3f}"
        )
    print(
        f"first run of this data at this size: {figures['first run'] / mem_ips:.3f} of in-memory "
        f"(it decodes every image once); later runs: {figures['later run'] / mem_ips:.3f}"
    )
    print(
        f"RESULT training_input pipeline_images_per_s={figures['later run']:.1f} in_memory_images_per_s={mem_ips:.1f} "
        f"ratio={figures['later run'] / mem_ips:.3f} goal=0.9"
    )


def timed_fit(builders, cfg, classes, ds, epochs, set_seeds, warm_ds):
    """Seconds to fit a fresh model on ``ds``; the graphs are traced first on ``warm_ds`` (so a
    pipeline's cache is still empty when its timed fit starts)."""
    set_seeds(cfg.seed)
    model = builders.build_model(cfg, len(classes))
    model.fit(warm_ds.take(1), epochs=1, verbose=0)
    set_seeds(cfg.seed)
    import keras

    marks = []
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: marks.append(time.monotonic()))
    started = time.monotonic()
    model.fit(ds, epochs=epochs, verbose=0, callbacks=[clock])
    total = time.monotonic() - started
    per_epoch = [b - a for a, b in zip([started] + marks[:-1], marks)]
    return total, per_epoch


if __name__ == "__main__":
    main()
