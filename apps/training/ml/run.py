"""``train_and_evaluate``: the whole run — seed, pipeline, build, fit, evaluate, export — with
plain callbacks for progress, so that the portal's worker, a bench script or a notebook can drive it."""

import json
import os
import time
from dataclasses import dataclass, field

from .config import PATCH_RECIPES, TrainConfig

SCRATCH_MIN_S = 30  # the search tries no from-scratch candidate in less time than this


@dataclass
class SplitData:
    sources: list
    labels: list


@dataclass
class RunResult:
    history: dict
    metrics: dict
    predictions: list
    artifacts: dict = field(default_factory=dict)  # kind -> local path
    card: dict = field(default_factory=dict)
    training_seconds: float = 0.0
    epochs_run: int = 0
    cancelled: bool = False
    stopped_early: bool = False
    best_epoch: int = 0
    params: int = 0
    heatmaps: list = field(default_factory=list)  # PNG bytes per test image, in test order
    heat_maps: list = field(default_factory=list)  # the maps [h, w] in 0..1 behind them, same order
    heat_geometry: list = field(default_factory=list)  # where each map lies on the photograph (localize.to_photo)


def set_seeds(seed):
    import keras

    keras.utils.set_random_seed(int(seed))


def train_and_evaluate(
    cfg: TrainConfig,
    splits: dict,
    classes,
    *,
    workdir,
    reader=None,
    base_path=None,
    backbone_path=None,
    on_epoch=None,
    on_batch=None,
    should_stop=None,
    log=print,
    card_info=None,
    export=True,
    decoded_cache=None,
):
    """Train on ``splits['train']``, pick weights on ``splits['val']``, evaluate on ``splits['test']``.

    ``splits``: {"train"|"val"|"test": SplitData}. ``backbone_path``: the stored weights of
    ``cfg.backbone`` (the patch_mil recipe). ``decoded_cache``: a data.DecodedCache that keeps the
    decoded splits across runs (published when this run ends). Returns a RunResult; artifacts are written under
    ``workdir`` (model.keras, savedmodel.zip, model_card.json) unless the run was cancelled.
    """
    from . import data, evaluate
    from . import export as exp

    os.makedirs(workdir, exist_ok=True)
    set_seeds(cfg.seed)
    k = len(classes)
    train, val, test = splits["train"], splits.get("val"), splits.get("test")

    def ds(split, training, *, cache=True, batch_size=None, conf=cfg):
        if split is None or not split.sources:
            return None
        return data.make_dataset(
            split.sources,
            split.labels,
            image_size=conf.image_size,
            channels=conf.channels,
            batch_size=batch_size or conf.batch_size,
            augment=conf.augmentation if training else "none",
            shuffle=training,
            seed=conf.seed,
            reader=reader,
            cache=cache,
            disk_cache=decoded_cache,
        )

    weights = data.class_weights(train.labels, k) if cfg.class_weighting else None
    log(
        f"train {len(train.sources)} · val {len(val.sources) if val else 0} · test {len(test.sources) if test else 0} "
        f"images; classes {list(classes)}; class weights {weights}"
    )
    patchy = cfg.architecture in PATCH_RECIPES
    heatmap_model = None
    if patchy:
        model, result, heatmap_model = _fit_patch(
            cfg,
            ds,
            train,
            val,
            classes,
            weights,
            backbone_path=backbone_path,
            on_epoch=on_epoch,
            on_batch=on_batch,
            should_stop=should_stop,
            log=log,
        )
    else:
        model, result = _fit_builtin(
            cfg,
            ds,
            train,
            val,
            k,
            weights,
            base_path=base_path,
            on_epoch=on_epoch,
            on_batch=on_batch,
            should_stop=should_stop,
            log=log,
        )
    if result.cancelled:
        return result
    test_ds = ds(test, False, cache=not patchy, batch_size=8 if patchy else None)
    decision = dict(result.card)  # what validation decided (the patch recipes' threshold and search)
    params = result.params
    seconds = result.training_seconds
    epochs_run = result.epochs_run

    if test_ds is not None:
        if heatmap_model is not None:  # one pass gives the probabilities and the heatmaps
            from .patch import predict_with_heatmaps

            y_true, probs, result.heatmaps, result.heat_maps, result.heat_geometry = predict_with_heatmaps(
                heatmap_model, test_ds
            )
            log(f"heatmaps of {len(result.heatmaps)} test images drawn")
        else:  # a classifier: Grad-CAM, in the same one pass that predicts
            from .explain import NotExplainable, predict_with_gradcam

            try:
                y_true, probs, result.heatmaps, result.heat_maps = predict_with_gradcam(model, test_ds)
                log(f"Grad-CAM heatmaps of {len(result.heatmaps)} test images drawn")
            except (NotExplainable, ValueError) as exc:  # a map is a bonus: the evaluation goes on without
                log(f"no heatmaps: {exc}")
                y_true, probs = evaluate.predict(model, test_ds)
        result.metrics = evaluate.classification_metrics(y_true, probs, classes)
        result.predictions = evaluate.predictions_list(y_true, probs)
        log(f"test accuracy {result.metrics['accuracy']:.4f}, macro F1 {result.metrics['macro_f1']:.4f}")
    if not export:
        return result
    paths = {
        "keras": os.path.join(workdir, "model.keras"),
        "savedmodel": os.path.join(workdir, "savedmodel.zip"),
        "model_card": os.path.join(workdir, "model_card.json"),
    }
    exp.save_keras(model, paths["keras"])
    exp.export_savedmodel_zip(model, os.path.join(workdir, "savedmodel"), paths["savedmodel"])
    info = dict(card_info or {})
    result.card = exp.model_card(
        name=info.pop("name", cfg.architecture),
        config=cfg.to_dict(),
        classes=classes,
        metrics=result.metrics,
        training_seconds=seconds,
        epochs_run=epochs_run,
        model_params=params,
        seeds=info.pop("seeds", {"training": cfg.seed}),
        **info,
    )
    result.card.update(decision)
    with open(paths["model_card"], "w") as fh:
        json.dump(result.card, fh, indent=2, sort_keys=True)
    result.artifacts = paths
    log("artifacts written: " + ", ".join(sorted(paths)))
    return result


def _fit_builtin(cfg, ds, train, val, k, weights, *, base_path, on_epoch, on_batch, should_stop, log):
    import keras

    from . import builders
    from . import fit as fitmod

    train_ds, val_ds = ds(train, True), ds(val, False)
    with fitmod.precision_policy(cfg.mixed_precision and cfg.accelerator == "gpu"):
        model = builders.build_model(cfg, k, base_path=base_path)
        params = int(model.count_params())
        log(f"model {cfg.architecture}: {params:,} parameters; policy {keras.mixed_precision.global_policy().name}")
        started = time.monotonic()
        history, portal, early = fitmod.fit(
            model,
            train_ds,
            val_ds,
            cfg,
            class_weight=weights,
            on_epoch=on_epoch,
            on_batch=on_batch,
            should_stop=should_stop,
        )
        seconds = time.monotonic() - started
    epochs_run = len(next(iter(history.values()), []))
    result = RunResult(
        history=history,
        metrics={},
        predictions=[],
        training_seconds=seconds,
        epochs_run=epochs_run,
        cancelled=portal.cancelled,
        params=params,
        stopped_early=bool(early and early.stopped_epoch),
        best_epoch=epochs_run,
    )
    if early is not None and early.best_epoch is not None and early.stopped_epoch:
        result.best_epoch = int(early.best_epoch) + 1
    log(
        f"trained {epochs_run} epochs in {seconds:.1f} s"
        + (" (cancelled)" if portal.cancelled else "")
        + (f"; early stop, best epoch {result.best_epoch}" if result.stopped_early else "")
    )
    return model, result


def _fit_patch(cfg, ds, train, val, classes, weights, *, backbone_path, on_epoch, on_batch, should_stop, log):
    from . import patch

    if not backbone_path:
        raise ValueError(f"the {cfg.backbone} backbone's weights are needed (none were given)")
    started = time.monotonic()
    # one pass over each split, no cache (full-resolution images are large), no augmentation
    datasets = {"train": ds(train, False, cache=False, batch_size=8), "val": ds(val, False, cache=False, batch_size=8)}
    out = patch.fit_patch_model(
        cfg,
        datasets,
        train.labels,
        classes,
        weights_path=backbone_path,
        class_weight=weights,
        on_epoch=on_epoch,
        on_batch=on_batch,
        should_stop=should_stop,
        log=log,
    )
    history = out["history"]
    epochs_run = len(next(iter(history.values()), []))
    result = RunResult(
        history=history,
        metrics={},
        predictions=[],
        epochs_run=epochs_run,
        cancelled=out["cancelled"],
        params=out.get("params", 0),
        best_epoch=out.get("best_epoch", 0),
    )
    model, heat = out["model"], out.get("heatmap_model")
    if not out["cancelled"]:
        result.card = {"decision_threshold": out["threshold"], "recipe_search": out["search"]}
        if cfg.architecture == "patch_auto" and val is not None and val.sources:
            model, heat = _search_on(
                cfg,
                ds,
                train,
                val,
                classes,
                weights,
                model,
                heat,
                result,
                started,
                on_epoch,
                on_batch,
                should_stop,
                log,
            )
    result.training_seconds = time.monotonic() - started
    if not result.cancelled:
        log(
            f"model {cfg.architecture} on {cfg.backbone}: {result.params:,} parameters fitted; {result.training_seconds:.1f} s"
        )
    return model, result, heat


def _search_on(
    cfg, ds, train, val, classes, weights, model, heat, result, started, on_epoch, on_batch, should_stop, log
):
    """The automatic search's last candidate: a small CNN from scratch, trained in what is left of
    ``cfg.search_budget_s`` after the patch candidates (stopped at the budget with its best weights so
    far), on the same schedule. It wins only where validation prefers it (search.choose); it is then
    wrapped to take the photograph at the run's input size and shrink it itself, so registry, serving
    and exports send the same raw images whatever won. Updates ``result`` in place; returns the kept
    (model, heatmap model)."""
    import keras
    import numpy as np

    from . import evaluate, search

    found = dict(result.card["recipe_search"])
    budget = int(cfg.search_budget_s)
    spent = time.monotonic() - started
    patch_candidates = found["candidates"]
    left = budget - spent
    if left < SCRATCH_MIN_S:
        note = (
            "the small CNN from scratch: not tried, "
            + (f"{max(left, 0):.0f} s of the {budget} s budget left" if budget else "the budget is 0")
            + f" after the patch candidates ({spent:.0f} s)"
        )
        log("recipe search: " + note)
        result.card["recipe_search"] = {**found, "budget_s": budget, "spent_s": round(spent, 1), "skipped": [note]}
        return model, heat
    scfg = TrainConfig.from_dict({**cfg.to_dict(), "architecture": "small_cnn", "image_size": TrainConfig().image_size})
    deadline = time.monotonic() + left
    at_budget = []

    def stop():
        if should_stop and should_stop():
            return True
        if time.monotonic() > deadline:
            at_budget.append(True)
            return True
        return False

    offset = result.epochs_run

    def reported(epoch, metrics, seconds):
        if on_epoch:
            on_epoch(offset + epoch, metrics, seconds)  # its epochs follow the patch heads'

    log(
        f"candidate the small CNN from scratch: {scfg.image_size} px, up to {scfg.epochs} epochs in the {left:.0f} s left"
    )
    began = time.monotonic()
    scratch, sres = _fit_builtin(
        scfg,
        lambda split, training, **kw: ds(split, training, conf=scfg, **kw),
        train,
        val,
        len(classes),
        weights,
        base_path=None,
        on_epoch=reported,
        on_batch=on_batch,
        should_stop=stop,
        log=log,
    )
    if sres.cancelled and not at_budget:
        result.cancelled = True
        return None, None
    y, probs = evaluate.predict(scratch, ds(val, False, conf=scfg))
    acc, area = float((probs.argmax(-1) == y).mean()), None
    if len(classes) == 2:
        counts = np.bincount(np.asarray(train.labels), minlength=2)
        positive = int(np.argmin(counts)) if counts[0] != counts[1] else 1
        area = evaluate.binary_curves(y == positive, probs[:, positive])["roc_auc"]
    candidate = {
        "kind": "scratch",
        "title": "the small CNN from scratch" + (" (stopped at the budget)" if at_budget else ""),
        "val_accuracy": acc,
        "val_auc": area,
        "seconds": round(time.monotonic() - began, 1),
    }
    log(f"candidate {candidate['title']}: " + search.figures(candidate))
    candidates = [*patch_candidates, candidate]
    winner, why = search.choose(candidates, len(val.labels))
    log("recipe search: " + why)
    result.card["recipe_search"] = search.summary(
        candidates, winner, why, budget_s=budget, spent_s=time.monotonic() - started
    )
    if winner is not candidate:
        return model, heat
    inp = keras.Input((cfg.image_size, cfg.image_size, cfg.channels), name="image")
    shrunk = keras.layers.Resizing(scfg.image_size, scfg.image_size, antialias=True, name="shrink")(inp)
    result.history, result.epochs_run = sres.history, sres.epochs_run
    result.best_epoch, result.params, result.stopped_early = sres.best_epoch, sres.params, sres.stopped_early
    result.card["decision_threshold"] = None
    return keras.Model(inp, scratch(shrunk), name="scratch_" + scratch.name), None
