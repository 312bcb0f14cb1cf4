"""The default recipe at the size of a real dataset: 7,200 photographs of 300 px (the size of the
casting dataset a user tried: 7,300 JPEGs), made from the 480 screw photographs, trained end to end
by the portal's training code on this machine, with its wall time and the accuracy it reaches.

How the set is made (bench-only, in a temporary folder): every screw photograph gives 15 variants,
each turned by a random angle (any: the screws lie every which way), scaled to 88–100 % around the
centre, brightness ×0.9–1.1, resized to 300 × 300 and saved as a JPEG (quality 85–95). A variant
keeps its photograph's label. The split is by **photograph**, stratified 70/15/15 (all 15 variants
of a photograph fall in the same split), so the test set holds only screws the model never saw.
A rotation can move a small defect near a corner out of the frame: the labels carry a little noise.

The reference, measured in the same run: the raw Keras backbone's forward pass over a sample of the
same images at the recipe's input size (the least any patch-feature recipe must spend), scaled to
the whole set. Goal: the whole run (decode, features, the recipe's search, evaluation) ≤ 20 min.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/scale.py [--quick|--smoke] [--images-per-photo 15]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._screws import load_manifest, stratified_split

GOAL_SECONDS = 20 * 60


def make_variants(rows, per_photo, folder, seed=0):
    """[(path, label, photo)] of ``per_photo`` 300 px JPEG variants of each photograph."""
    from PIL import Image, ImageEnhance

    rng = random.Random(seed)
    out = []
    for n, (path, label) in enumerate(rows):
        with Image.open(path) as src:
            img = src.convert("RGB")
        fill = tuple(int(v) for v in img.resize((1, 1)).getpixel((0, 0)))
        for k in range(per_photo):
            v = img.rotate(rng.uniform(0, 360), resample=Image.BILINEAR, fillcolor=fill)
            scale = rng.uniform(0.88, 1.0)
            w, h = v.size
            cw, ch = int(w * scale), int(h * scale)
            left, top = (w - cw) // 2, (h - ch) // 2
            v = v.crop((left, top, left + cw, top + ch)).resize((300, 300), Image.LANCZOS)
            v = ImageEnhance.Brightness(v).enhance(rng.uniform(0.9, 1.1))
            target = folder / f"{n:03d}_{k:02d}.jpg"
            v.save(target, "JPEG", quality=rng.randint(85, 95))
            out.append((str(target), label, path))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 variants per photograph (1,440 images, minutes)")
    ap.add_argument("--smoke", action="store_true", help="32 photographs, 2 variants, 2 head epochs (< 1 min)")
    ap.add_argument("--images-per-photo", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    per_photo = args.images_per_photo or (2 if args.smoke else 3 if args.quick else 15)

    from apps.training.ml import backbones
    from apps.training.ml.config import TrainConfig
    from apps.training.ml.recipes import DEFAULT_RECIPE
    from apps.training.ml.run import SplitData, train_and_evaluate

    rows = load_manifest()
    if args.smoke:
        rows = [r for r in rows if r[1] == "good"][:20] + [r for r in rows if r[1] != "good"][:12]
    classes = sorted({label for _, label in rows})
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    (tmp / "images").mkdir()
    print(
        f"{len(rows)} photographs × {per_photo} variants; load average {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    started = time.monotonic()
    splits_by_photo = stratified_split(rows, seed=args.seed)
    variants = make_variants(rows, per_photo, tmp / "images", seed=args.seed)
    by_photo = {}
    for path, label, photo in variants:
        by_photo.setdefault(photo, []).append((path, label))
    made = time.monotonic() - started
    sizes = [os.path.getsize(p) for p, _, _ in variants[:200]]
    print(
        f"made {len(variants)} JPEGs of 300 px ({sum(sizes) / len(sizes) / 1024:.0f} KB avg) in {made:.0f} s "
        f"(bench set-up, not counted)",
        flush=True,
    )

    overrides = {"epochs": 2} if args.smoke else {}
    cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), **DEFAULT_RECIPE, **overrides})
    weights = str(tmp / "backbone.weights.h5")
    backbones.convert_lite0(backbones.lite0_pth_from_package(), weights)
    data = {}
    for split, photos in splits_by_photo.items():
        items = [v for p, _ in photos for v in by_photo[p]]
        data[split] = SplitData([p for p, _ in items], [classes.index(lab) for _, lab in items])
    print("split by photograph: " + ", ".join(f"{s} {len(d.sources)}" for s, d in data.items()), flush=True)

    # The reference: the raw backbone forward pass on a sample, at the recipe's input size.
    reference = backbone_seconds(cfg, weights, [p for p, _, _ in variants], sample=64 if args.smoke else 256)
    print(
        f"reference: raw Keras backbone forward pass at {cfg.crop_width}×{cfg.crop_height}, "
        f"{reference['per_image'] * 1000:.1f} ms an image → {reference['total']:.0f} s for {len(variants)}",
        flush=True,
    )

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        result = train_and_evaluate(
            cfg,
            data,
            classes,
            workdir=work,
            backbone_path=weights,
            export=False,
            log=lambda msg: print(f"  {msg}", flush=True),
        )
    wall = time.monotonic() - started
    m = result.metrics
    test = data["test"].labels
    majority = max(test.count(i) for i in range(len(classes))) / len(test)
    print(
        f"default recipe ({cfg.architecture}) on {len(variants)} images: wall {wall:.0f} s "
        f"({len(variants) / wall:.1f} images/s end to end); test n={m['n']} accuracy={m['accuracy']:.4f} "
        f"macro_f1={m['macro_f1']:.4f} (majority class {majority:.4f}); goal ≤ {GOAL_SECONDS} s: "
        f"{'met' if wall <= GOAL_SECONDS else 'NOT met'}",
        flush=True,
    )
    print(
        json.dumps(
            {
                "images": len(variants),
                "wall_s": round(wall),
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "confusion": m["confusion_matrix"],
            }
        )
    )
    print(
        f"RESULT scale wall_s={wall:.0f} backbone_pass_s={reference['total']:.0f} "
        f"ratio={wall / reference['total']:.3f} goal=wall_s<={GOAL_SECONDS}"
    )


def backbone_seconds(cfg, weights, paths, sample):
    """Seconds of the raw backbone's forward pass, in batches of 16, on ``sample`` of ``paths``
    already decoded and resized to the recipe's input (so only the network is timed), scaled."""
    import numpy as np
    from PIL import Image

    from apps.training.ml import backbones

    net = backbones.build_backbone(cfg.backbone, (cfg.crop_height, cfg.crop_width, 3), weights)
    picked = random.Random(1).sample(paths, min(sample, len(paths)))
    x = np.stack(
        [np.asarray(Image.open(p).convert("RGB").resize((cfg.crop_width, cfg.crop_height)), np.float32) for p in picked]
    )
    x = np.asarray(backbones.preprocess(x, cfg.backbone))
    net.predict(x[:16], verbose=0)
    started = time.monotonic()
    net.predict(x, batch_size=16, verbose=0)
    per_image = (time.monotonic() - started) / len(x)
    return {"per_image": per_image, "total": per_image * len(paths)}


if __name__ == "__main__":
    main()
