"""The default training recipe on all 480 screw images (pooled, stratified 70/15/15, seeded),
run directly on apps.training.ml (no Django, no worker). Prints test accuracy, macro F1 and
training time beside the majority-class baseline measured on the same test split.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/default_recipe.py [--quick] [--set key=value ...]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._screws import load_manifest, stratified_split  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="8 epochs at 96 px (a smoke run, minutes)")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="override a hyperparameter: key=value (JSON value)")
    args = ap.parse_args()

    from apps.training.ml.config import TrainConfig, config_errors
    from apps.training.ml.run import SplitData, train_and_evaluate

    overrides = {}
    for kv in args.set:
        key, _, value = kv.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.quick:
        overrides = {"epochs": 8, "image_size": 96, **overrides}
    errors = config_errors(overrides)
    if errors:
        raise SystemExit(f"bad --set: {errors}")
    cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), **overrides})
    rows = load_manifest()
    splits = stratified_split(rows, seed=args.split_seed)
    classes = sorted({label for _, label in rows})
    data = {s: SplitData([p for p, _ in v], [classes.index(lab) for _, lab in v]) for s, v in splits.items()}
    print(f"config: {json.dumps(cfg.to_dict(), sort_keys=True)}")
    print(f"split seed {args.split_seed}: " + ", ".join(f"{s} {len(v)}" for s, v in splits.items()))

    def on_epoch(epoch, metrics, seconds):
        print(f"epoch {epoch:3d} {seconds:5.1f}s " + " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())),
              flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_and_evaluate(cfg, data, classes, workdir=tmp, on_epoch=on_epoch, export=False)
    wall = time.monotonic() - started
    test_labels = data["test"].labels
    majority = max(test_labels.count(i) for i in range(len(classes))) / len(test_labels)
    m = result.metrics
    print(f"test n={m['n']} accuracy={m['accuracy']:.4f} macro_f1={m['macro_f1']:.4f} "
          f"roc_auc={m.get('roc_auc', 0):.4f} confusion={m['confusion_matrix']} classes={m['classes']}")
    print(f"training {result.training_seconds:.1f} s for {result.epochs_run} epochs (best epoch {result.best_epoch}); "
          f"wall {wall:.1f} s; {result.params:,} parameters")
    print(f"majority-class baseline on the same test split: {majority:.4f}")
    print(f"RESULT default_recipe test_accuracy={m['accuracy']:.4f} majority_baseline={majority:.4f} "
          f"ratio={m['accuracy'] / majority:.3f} goal=0.95")


if __name__ == "__main__":
    main()
