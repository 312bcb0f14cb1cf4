"""Promotion gate speed: running the production model on the candidate's test split (the
champion/challenger check) against the training's own evaluation of the same images.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/registry_gate.py [--quick]

The gate (apps.registry.evaluation.evaluate_on_split: read the production version's .keras through
artifact_bytes with its sha256 check, load it with safe_mode, feed the split through the training
input pipeline and score it with classification_metrics) is timed against the reference: the same
model, already in memory, predicting the same files through the same ``make_dataset`` +
``evaluate.predict`` as a training run's evaluation. The difference is what the registry adds
(hash check, model load, metrics). Goal: the gate takes at most 1.5x the reference.

Figures are images per CPU-second of this process (time.process_time), best of alternating rounds:
on a shared machine wall-clock time measures the neighbours. Wall-clock figures are printed too.
Everything happens in a throwaway database and media folder under a temporary directory.
"""

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.5


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="48 test images, two rounds (about a minute)")
    ap.add_argument("--smoke", action="store_true", help="12 test images, one round (seconds; CI runs it)")
    args = ap.parse_args()
    shared = Path(os.environ.get("PORTAL_SHARED", ROOT.parent / "shared"))
    screws = shared / "datasets" / "mvtec-screw"
    if not (screws / "manifest.csv").exists():
        sys.exit(f"screw images not found at {screws} (set PORTAL_SHARED)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    (tmp / "media").mkdir()
    os.environ.update(
        {
            "PORTAL_VAR_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
            "MEDIA_ROOT": str(tmp / "media"),
            "PORTAL_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "mlportal.settings",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    sys.path.insert(0, str(ROOT))
    try:
        run(args, screws, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, screws, tmp):
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from types import SimpleNamespace

    from django.core.files.storage import default_storage

    from apps.core.storage import blob_put
    from apps.datasets.models import DatasetVersion, Item, VersionItem
    from apps.projects.models import Project
    from apps.registry.evaluation import evaluate_on_split
    from apps.training.ml import builders, data, evaluate
    from apps.training.ml.config import TrainConfig

    with open(screws / "manifest.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source_split"] == "test"]
    n = 12 if args.smoke else 48 if args.quick else len(rows)
    rounds = 1 if args.smoke else 2 if args.quick else 3
    rows = rows[:: max(1, len(rows) // n)][:n]
    project = Project.objects.create(slug="bench", name="Bench")
    version = DatasetVersion.objects.create(project=project, number=1, status="ready", classes=["defect", "good"])
    for r in rows:
        raw = (screws / r["path"]).read_bytes()
        blob = blob_put(raw, ext="png", content_type="image/png")
        item = Item.objects.create(
            project=project,
            sha256=blob.sha256,
            blob=blob,
            original_name=r["path"],
            width=1024,
            height=1024,
            mode="L",
            format="PNG",
            bytes=len(raw),
        )
        VersionItem.objects.create(version=version, item=item, split="test", label=r["label"])

    cfg = TrainConfig.from_dict(
        {**TrainConfig().to_dict(), "architecture": "tiny_cnn", "image_size": 128, "channels": 1}
    )
    model = builders.build_model(cfg, 2)
    path = tmp / "model.keras"
    model.save(path)
    blob = blob_put(path.read_bytes(), ext="keras", content_type="application/octet-stream")
    production = SimpleNamespace(
        artifacts={"keras": {"blob_id": blob.pk, "sha256": blob.sha256}},
        input_spec={"image_size": 128, "channels": 1},
        classes=["defect", "good"],
        __str__=lambda self: "bench model",
    )
    entries = list(version.entries.select_related("item__blob").order_by("item_id"))
    paths = [default_storage.path(e.item.blob.path) for e in entries]
    labels = [version.classes.index(e.label) for e in entries]

    def gate():
        return evaluate_on_split(production, version)

    def reference():
        ds = data.make_dataset(paths, labels, image_size=128, channels=1, batch_size=32, cache=False)
        y, p = evaluate.predict(model, ds)
        return evaluate.classification_metrics(y, p, version.classes)

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        return time.perf_counter() - w, time.process_time() - c, out

    reference(), gate()  # warm up TF (graph building, thread pools) for both sides
    best = {"gate": None, "reference": None}
    for i in range(rounds):
        order = [("gate", gate), ("reference", reference)][:: 1 if i % 2 == 0 else -1]
        for name, fn in order:
            wall, cpu, metrics = timed(fn)
            assert metrics["n"] == len(entries)
            print(f"round {i + 1} {name:9s}: {len(entries)} images, {wall:6.2f} s wall, {cpu:6.2f} s CPU")
            if best[name] is None or cpu < best[name][1]:
                best[name] = (wall, cpu)
    g_ips = len(entries) / best["gate"][1]
    r_ips = len(entries) / best["reference"][1]
    ratio = best["gate"][1] / best["reference"][1]
    print(f"gate:      {g_ips:.1f} images per CPU-second ({len(entries) / best['gate'][0]:.1f} per wall second)")
    print(f"reference: {r_ips:.1f} images per CPU-second ({len(entries) / best['reference'][0]:.1f} per wall second)")
    print(
        f"RESULT registry_gate gate_cpu_seconds={best['gate'][1]:.3f} reference_cpu_seconds={best['reference'][1]:.3f} "
        f"ratio={ratio:.3f} goal=<={GOAL}"
    )


if __name__ == "__main__":
    main()
