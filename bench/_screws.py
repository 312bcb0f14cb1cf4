"""Shared by the training benches: the screw manifest and a stratified, seeded split."""

import csv
import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PORTAL_SHARED", ROOT.parent / "shared"))
SCREWS = SHARED / "datasets" / "mvtec-screw"


def load_manifest():
    manifest = SCREWS / "manifest.csv"
    if not manifest.exists():
        raise SystemExit(f"screw images not found at {SCREWS} (set PORTAL_SHARED)")
    with open(manifest) as fh:
        return [(str(SCREWS / r["path"]), r["label"]) for r in csv.DictReader(fh)]


def stratified_split(rows, *, seed, fractions=(0.7, 0.15, 0.15)):
    """Pool every image, then split each class 70/15/15 with ``seed``: {split: [(path, label)]}."""
    rng = random.Random(seed)
    out = {"train": [], "val": [], "test": []}
    by_label = {}
    for path, label in rows:
        by_label.setdefault(label, []).append((path, label))
    for label in sorted(by_label):
        group = sorted(by_label[label])
        rng.shuffle(group)
        n = len(group)
        n_train, n_val = round(n * fractions[0]), round(n * fractions[1])
        out["train"] += group[:n_train]
        out["val"] += group[n_train : n_train + n_val]
        out["test"] += group[n_train + n_val :]
    return out
