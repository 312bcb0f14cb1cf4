"""Every write of the training app: launch, execute, cancel, rerun runs; create and settle sweeps;
send misclassified images for review."""

import itertools
import logging
import math
import os
import random
import shutil
import subprocess
import tempfile
import threading
import traceback

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.jobs import JobStatus, dispatch, heartbeat, launches_jobs, step_delay, transition
from apps.core.storage import blob_put
from apps.core.text import clean_name
from apps.datasets.models import DatasetVersion, Item, VersionStatus
from apps.labeling.services import queue_for_review
from apps.profiling.services import gate_check

from .ml.config import INTEGER_FIELDS, PATCH_RECIPES, SWEEPABLE, TrainConfig, config_errors
from .models import Artifact, EpochMetric, Sweep, TrainingRun

log = logging.getLogger(__name__)
MAX_BASE_MODEL_BYTES = 200 * 1024 * 1024
MAX_SWEEP_TRIALS = 32
RANGE_FIELDS = ("learning_rate", "dropout", "batch_size", "epochs", "image_size", "top_k")
SWEEP_METRICS = ("val_accuracy", "val_loss")
HEARTBEAT_EVERY_SECONDS = 5.0


# Checks --------------------------------------------------------------------------------------------


def config_clean(data):
    """Defaults + ``data`` as a checked TrainConfig dict, or ValidationError naming each bad field."""
    errors = config_errors(data or {})
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})
    return TrainConfig.from_dict({**TrainConfig().to_dict(), **(data or {})}).to_dict()


def version_problems(version):
    """Why ``version`` cannot be trained on (empty list: it can)."""
    if version.status != VersionStatus.READY:
        return [
            f"Dataset version v{version.number} is {version.status}, not ready: only a ready (frozen) "
            "version can be trained on."
        ]
    problems = []
    gate = gate_check(version)
    if not gate.passed:
        problems.append(
            f"Dataset version v{version.number} fails its blocking data-quality assertions: "
            + "; ".join(gate.failures or ["see its profile"])
        )
    train_counts = dict(
        version.entries.filter(split="train").values("label").annotate(n=Count("id")).values_list("label", "n")
    )
    empty = [c for c in version.classes if not train_counts.get(c)]
    if empty:
        problems.append(
            f"Class {', '.join(repr(c) for c in empty)} has no training images in v{version.number}; "
            "every class needs at least one."
        )
    if len(version.classes) < 2:
        problems.append(
            f"Dataset version v{version.number} has {len(version.classes)} class; training needs two or more."
        )
    return problems


def default_recipe(classes=None):
    """The hyperparameters a run gets for what it does not set: the patch-feature defect finder on
    EfficientNet-Lite0 for two classes when its weights are in the store (it clears the screw project's
    0.95 bar, bench/default_recipe.py), the small CNN otherwise."""
    from .backbone_store import stored_names
    from .ml.recipes import DEFAULT_RECIPE, FALLBACK_RECIPE

    two = classes is None or len(classes) == 2
    if two and DEFAULT_RECIPE["backbone"] in stored_names():
        return dict(DEFAULT_RECIPE)
    return dict(FALLBACK_RECIPE)


def recipe_reason(recipe):
    """Why the portal picked ``recipe`` (shown on the run page)."""
    from .ml.recipes import DEFAULT_RECIPE

    if recipe.get("architecture") == DEFAULT_RECIPE["architecture"]:
        return (
            "The portal's default: one pass of EfficientNet-Lite0 patch features over the object at full "
            "resolution, then the patch classifier and the anomaly detector both fitted on them and the one with "
            "the better validation accuracy kept. On the 480 screw photographs this reaches mean test accuracy "
            "0.968 and macro F1 0.956 over three split seeds, against 0.903 for the small CNN from scratch "
            "(docs/benchmarks.md)."
        )
    return (
        "The portal's fallback: the small CNN from scratch, because the default recipe's EfficientNet-Lite0 "
        "weights are not in the store or the version does not have exactly two classes."
    )


def _checked(project, dataset_version, config):
    """(version, config) when both pass; otherwise every problem of both, by field, at once.

    A config that names no architecture starts from the portal's default recipe."""
    from .backbone_store import missing_weights_error

    errors, version = {}, None
    try:
        version = _version_for(project, dataset_version)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    config = dict(config or {})
    if "architecture" not in config:
        recipe = default_recipe(version.classes if version else None)
        extra = {**(config.get("extra") or {}), "recipe": recipe_reason(recipe)}
        config = {**recipe, **config, "extra": extra}
    try:
        config = config_clean(config)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    else:
        if config["architecture"] in PATCH_RECIPES:
            problem = missing_weights_error(config["backbone"])
            if problem:
                errors["backbone"] = [problem]
    if errors:
        raise ValidationError(errors)
    return version, config


def _version_for(project, dataset_version):
    version = dataset_version
    if not isinstance(version, DatasetVersion):
        version = DatasetVersion.objects.filter(project=project, pk=dataset_version).first()
    if version is None or version.project_id != project.pk:
        raise ValidationError({"dataset_version": ["No such dataset version in this project."]})
    problems = version_problems(version)
    if problems:
        raise ValidationError({"dataset_version": problems})
    return version


def base_model_store(uploaded, *, config):
    """Check an uploaded .keras file (loads with safe_mode, input matches the run) and store it."""
    from .ml import builders

    name = getattr(uploaded, "name", "model.keras")
    if not name.lower().endswith(".keras"):
        raise ValidationError({"base_model": [f"{name}: upload a Keras model saved as a .keras file."]})
    if uploaded.size > MAX_BASE_MODEL_BYTES:
        raise ValidationError(
            {"base_model": [f"{name}: {uploaded.size:,} bytes is over the {MAX_BASE_MODEL_BYTES // 2**20} MiB limit."]}
        )
    data = uploaded.read()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "base.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            h, w, c = builders.base_model_input(path)
        except builders.BaseModelError as exc:
            raise ValidationError({"base_model": [f"{name}: {exc}"]}) from exc
    want = (config["image_size"], config["image_size"], config["channels"])
    if (h, w, c) != want and None not in (h, w, c):
        raise ValidationError(
            {
                "base_model": [
                    f"{name} takes {h}x{w} images with {c} channel(s); set input size {h} and channels {c} to fine-tune it."
                ]
            }
        )
    return blob_put(data, ext="keras", content_type="application/octet-stream")


# Runs ----------------------------------------------------------------------------------------------


def _queue_for(config):
    return "gpu" if config.get("accelerator") == "gpu" else "training"


def _enqueue(run):
    from .tasks import run_training

    settle = (lambda: sweep_refresh(sweep_id=run.sweep_id)) if run.sweep_id else None
    dispatch(run_training.s(run.pk).set(queue=run.queue), job=run, on_unavailable=settle)


def training_run_estimate(*, project, dataset_version, config=None):
    """What a launch with these arguments would expect, checked like a launch, without launching."""
    from .estimate import estimate_for_version, say

    version, config = _checked(project, dataset_version, config)
    seconds, basis = estimate_for_version(project, version, config)
    return {
        "seconds": round(seconds, 1),
        "text": say(seconds),
        "basis": basis,
        "architecture": config["architecture"],
        "dataset_version": version.number,
    }


@launches_jobs
@transaction.atomic
def training_run_create(
    *,
    project,
    user,
    dataset_version,
    config=None,
    base_model_file=None,
    base_model=None,
    name="",
    sweep=None,
    trial_index=None,
    retry_of=None,
):
    version, config = _checked(project, dataset_version, config)
    if config["architecture"] == "finetune":
        if base_model is None:
            if base_model_file is None:
                raise ValidationError({"base_model": ["Fine-tuning needs a .keras model file."]})
            base_model = base_model_store(base_model_file, config=config)
    else:
        base_model = None
    from .estimate import estimate_for_version

    estimated, basis = estimate_for_version(project, version, config)
    run = TrainingRun.objects.create(
        estimated_seconds=estimated,
        estimate_basis=basis[:200],
        project=project,
        dataset_version=version,
        config=config,
        base_model=base_model,
        name=clean_name(name)[:120],
        queue=_queue_for(config),
        created_by=user if getattr(user, "is_authenticated", False) else None,
        sweep=sweep,
        trial_index=trial_index,
        retry_of=retry_of,
        epochs_total=config["epochs"],
    )
    if sweep is None:
        audit_record(
            actor=user,
            action="training_run.launch",
            project=project,
            obj=run,
            data={"dataset_version": version.number, "config": config},
        )
    _enqueue(run)
    return run


@launches_jobs
def training_run_rerun(*, run, user):
    """The same config (seed included) on the same version, so the same split and seeds: a retry
    of a failed run, or a reproduction of a finished one."""
    if run.status in JobStatus.ACTIVE:
        raise ValidationError(f"{run} is still {run.status}; cancel it or wait for it to finish.")
    new = training_run_create(
        project=run.project,
        user=user,
        dataset_version=run.dataset_version,
        config=run.config,
        base_model=run.base_model,
        name=run.name,
        retry_of=run,
    )
    audit_record(actor=user, action="training_run.rerun", project=run.project, obj=new, data={"of": run.pk})
    return new


def training_run_cancel(*, run, user):
    """A queued run is cancelled at once; a running one is asked to stop (within one batch)."""
    cancelled_now = transition(
        TrainingRun, run.pk, JobStatus.QUEUED, JobStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True
    )
    if (
        not cancelled_now
        and TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(cancel_requested=True) != 1
    ):
        raise ValidationError(
            f"{run} is {TrainingRun.objects.get(pk=run.pk).status}; only a queued or running run can be cancelled."
        )
    audit_record(actor=user, action="training_run.cancel", project=run.project, obj=run)
    run.refresh_from_db()
    if run.sweep_id and run.status in JobStatus.FINISHED:
        sweep_refresh(sweep_id=run.sweep_id)
    return run


def _append_log(run_id, line):
    stamp = timezone.now().strftime("%H:%M:%S")
    run = TrainingRun.objects.only("log").get(pk=run_id)
    TrainingRun.objects.filter(pk=run_id).update(log=(run.log + f"{stamp} {line}\n")[-100_000:])


def code_version():
    if os.environ.get("PORTAL_CODE_VERSION"):
        return os.environ["PORTAL_CODE_VERSION"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _splits_of(version):
    """{split: SplitData} in a stable order (by item id), plus the item ids of each split.

    Local storage hands the pipeline file paths (read in parallel inside the graph); any other
    storage (S3…) is read through Django's storage API by the pipeline's reader."""
    from .ml.run import SplitData

    classes = list(version.classes)
    entries = list(version.entries.select_related("item__blob").order_by("item_id"))
    sources, reader = storage_sources([e.item.blob.path for e in entries])
    splits, ids = {}, {}
    for e, src in zip(entries, sources):
        splits.setdefault(e.split, SplitData([], []))
        splits[e.split].sources.append(src)
        splits[e.split].labels.append(classes.index(e.label))
        ids.setdefault(e.split, []).append(e.item_id)
    return splits, ids, reader


def decoded_cache():
    """The folder of decoded, resized splits kept across runs (ml.data.DecodedCache), or None when
    TRAINING_CACHE_DIR is empty."""
    from .ml.data import DecodedCache

    if not settings.TRAINING_CACHE_DIR:
        return None
    return DecodedCache(settings.TRAINING_CACHE_DIR, max_bytes=settings.TRAINING_CACHE_MAX_BYTES)


def storage_sources(names):
    """(sources, reader) for the input pipeline: local file paths and no reader when the storage
    is a local disk; else the storage names and a reader that goes through Django's storage API."""
    try:
        return [default_storage.path(n) for n in names], None
    except NotImplementedError:  # S3 and other remote storages have no local path
        return list(names), _storage_reader


def _storage_reader(name):
    with default_storage.open(name, "rb") as fh:
        return fh.read()


class _Heartbeat(threading.Thread):
    """Beats the run's heartbeat while the worker lives; a SIGKILL stops it with the process."""

    def __init__(self, run_id):
        super().__init__(daemon=True, name=f"heartbeat-run-{run_id}")
        self.run_id, self.stopped = run_id, threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(HEARTBEAT_EVERY_SECONDS):
                try:
                    heartbeat(TrainingRun, self.run_id)
                except DatabaseError:  # a busy database: skip this beat, the next one will do
                    log.warning("heartbeat of run %s skipped: database busy", self.run_id)
        finally:
            connection.close()


def training_run_execute(*, run_id, worker=""):
    """The worker's side: queued → running → succeeded | failed | cancelled. A redelivered task
    for a run that already left ``queued`` does nothing (no duplicate work)."""
    now = timezone.now()
    if not transition(
        TrainingRun, run_id, JobStatus.QUEUED, JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200]
    ):
        return None
    run = TrainingRun.objects.select_related("dataset_version", "base_model").get(pk=run_id)
    if run.sweep_id:
        transition(Sweep, run.sweep_id, JobStatus.QUEUED, JobStatus.RUNNING)
    beat = _Heartbeat(run_id)
    beat.start()
    workdir = tempfile.mkdtemp(prefix=f"run{run_id}-")
    try:
        _execute(run, workdir)
    except Exception as exc:  # the row must say what went wrong, whatever it was
        _append_log(run_id, traceback.format_exc())
        transition(
            TrainingRun,
            run_id,
            JobStatus.RUNNING,
            JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        log.exception("training run %s failed", run_id)
    finally:
        beat.stopped.set()
        shutil.rmtree(workdir, ignore_errors=True)
        if run.sweep_id:
            sweep_refresh(sweep_id=run.sweep_id)
    return TrainingRun.objects.get(pk=run_id)


def _execute(run, workdir):
    import tensorflow as tf

    from .ml.run import train_and_evaluate

    run_id, version = run.pk, run.dataset_version
    cfg = TrainConfig.from_dict(run.config)
    splits, ids, reader = _splits_of(version)
    n_train = len(splits["train"].sources)
    commit = code_version()
    TrainingRun.objects.filter(pk=run_id).update(
        batches_per_epoch=-(-n_train // cfg.batch_size), code_version=commit, tf_version=tf.__version__
    )
    if cfg.accelerator == "gpu" and not tf.config.list_physical_devices("GPU"):
        _append_log(run_id, "WARNING: the run asked for a GPU but this worker has none; training on the CPU.")
    base_path = backbone_path = None
    if cfg.architecture in PATCH_RECIPES:
        from .backbone_store import weights_to_file

        backbone_path = weights_to_file(cfg.backbone, workdir)
    if run.base_model_id:
        base_path = os.path.join(workdir, "base.keras")
        with default_storage.open(run.base_model.path, "rb") as src, open(base_path, "wb") as dst:
            shutil.copyfileobj(src, dst)

    def on_epoch(epoch, metrics, seconds):
        step_delay()
        EpochMetric.objects.update_or_create(
            run_id=run_id, epoch=epoch, defaults={"metrics": metrics, "seconds": seconds}
        )
        TrainingRun.objects.filter(pk=run_id).update(
            epochs_done=epoch, current_batch=0, seconds_per_epoch=seconds, heartbeat_at=timezone.now()
        )
        _append_log(
            run_id,
            f"epoch {epoch}/{cfg.epochs} ({seconds:.1f} s): "
            + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())),
        )

    def on_batch(epoch, batch):
        TrainingRun.objects.filter(pk=run_id).update(current_batch=batch)

    def should_stop():
        return TrainingRun.objects.filter(pk=run_id).exclude(status=JobStatus.RUNNING, cancel_requested=False).exists()

    card_info = {
        "name": f"{run.project.slug} run {run_id}",
        "dataset": {
            "project": run.project.slug,
            "version": version.number,
            "name": version.name,
            "content_hash": version.content_hash,
            "split_seed": version.seed,
            "counts": version.counts,
        },
        "code_version": commit,
        "seeds": {"training": cfg.seed, "split": version.seed},
    }
    cache = decoded_cache()
    try:
        result = train_and_evaluate(
            cfg,
            splits,
            version.classes,
            workdir=workdir,
            reader=reader,
            base_path=base_path,
            backbone_path=backbone_path,
            on_epoch=on_epoch,
            on_batch=on_batch,
            should_stop=should_stop,
            log=lambda line: _append_log(run_id, line),
            card_info=card_info,
            decoded_cache=cache,
        )
    finally:
        if cache is not None:
            cache.publish()
            if cache.hits or cache.misses:
                _append_log(
                    run_id,
                    f"decoded images: {cache.hits} split(s) from the cache of earlier runs, "
                    f"{cache.misses} decoded now (kept for the next run)",
                )
    if result.cancelled:
        transition(
            TrainingRun,
            run_id,
            JobStatus.RUNNING,
            JobStatus.CANCELLED,
            finished_at=timezone.now(),
            epochs_run=result.epochs_run,
            training_seconds=result.training_seconds,
        )
        _append_log(run_id, "cancelled")
        return
    test_ids = ids.get("test", [])
    predictions = [
        {"item": test_ids[i], **{k: p[k] for k in ("true", "pred", "confidence", "probs")}}
        for i, p in enumerate(result.predictions)
    ]
    for row, png in zip(predictions, result.heatmaps):  # patch recipes: where the model looked, per test image
        row["heatmap"] = blob_put(png, ext="png", content_type="image/png").sha256
    with transaction.atomic():
        for kind, path in result.artifacts.items():
            with open(path, "rb") as fh:
                data = fh.read()
            ext = {"keras": "keras", "savedmodel": "zip", "model_card": "json"}[kind]
            blob = blob_put(
                data, ext=ext, content_type="application/json" if ext == "json" else "application/octet-stream"
            )
            Artifact.objects.update_or_create(
                run_id=run_id,
                kind=kind,
                defaults={"blob": blob, "sha256": blob.sha256, "size": blob.size, "filename": os.path.basename(path)},
            )
        transition(
            TrainingRun,
            run_id,
            JobStatus.RUNNING,
            JobStatus.SUCCEEDED,
            finished_at=timezone.now(),
            test_metrics=result.metrics,
            predictions=predictions,
            best_val=_best_val(result.history),
            training_seconds=result.training_seconds,
            epochs_run=result.epochs_run,
            model_card=result.card,
        )
    _append_log(run_id, "succeeded")


def _best_val(history):
    best = {}
    for key, values in history.items():
        if key.startswith("val_") and values:
            pick = min if key.endswith("loss") else max
            value = pick(values)
            best[key] = float(value)
            best[f"{key}_epoch"] = values.index(value) + 1
    return best


# Sweeps --------------------------------------------------------------------------------------------


def is_range(values):
    return isinstance(values, dict)


def grid_size(space):
    """How many combinations a grid over ``space`` has, counted without building them."""
    return math.prod(len(v) for v in space.values())


def sweep_trials(*, method, space, max_trials, seed=0):
    """The list of hyperparameter dicts a sweep will run. ``space``: {name: [values]} or, for random
    search, {name: {"min", "max", "log"}} drawn uniformly (or log-uniformly) in the range. The
    Cartesian product is never built: a grid is walked lazily, and random search over lists alone
    draws distinct combination numbers and decodes them."""
    keys = sorted(space)
    rng = random.Random(seed)
    if method == Sweep.GRID:
        return [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]
    if not any(is_range(space[k]) for k in keys):
        total = grid_size(space)
        picks = rng.sample(range(total), min(max_trials, total))  # a range object: nothing materialized
        trials = []
        for n in picks:
            combo = {}
            for k in reversed(keys):
                n, i = divmod(n, len(space[k]))
                combo[k] = space[k][i]
            trials.append({k: combo[k] for k in keys})
        return trials
    trials = []
    for _ in range(max_trials):
        combo = {}
        for k in keys:
            v = space[k]
            if not is_range(v):
                combo[k] = rng.choice(v)
                continue
            lo, hi = float(v["min"]), float(v["max"])
            x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if v.get("log") else rng.uniform(lo, hi)
            combo[k] = int(round(x)) if k in INTEGER_FIELDS else float(f"{x:.6g}")
        trials.append(combo)
    return trials


def _range_errors(key, value, method):
    """Why a range ``value`` for ``key`` cannot be searched (empty list: it can)."""
    if method != Sweep.RANDOM:
        return [f"{key}: a range needs random search (a grid takes a list of values)."]
    if set(value) - {"min", "max", "log"} or "min" not in value or "max" not in value:
        return [f'{key}: a range is {{"min": …, "max": …, "log": true|false}}.']
    lo, hi = value["min"], value["max"]
    problems = [m for m in (config_errors({key: lo}).get(key), config_errors({key: hi}).get(key)) if m]
    if problems:
        return problems
    if key not in RANGE_FIELDS:
        return [f"{key} takes a list of values, not a range."]
    if not lo < hi:
        return [f"{key}: the range's min ({lo:g}) must be below its max ({hi:g})."]
    if value.get("log") and lo <= 0:
        return [f"{key}: a log-uniform range needs a min above 0."]
    if not isinstance(value.get("log", False), bool):
        return [f"{key}: log must be true or false."]
    return []


@launches_jobs
@transaction.atomic
def sweep_create(
    *,
    project,
    user,
    dataset_version,
    base_config=None,
    space,
    method="grid",
    max_trials=4,
    metric="val_accuracy",
    name="",
):
    version, base = _checked(project, dataset_version, base_config)
    if base["architecture"] == "finetune":
        raise ValidationError({"base_config": ["Sweeps use the built-in architectures; fine-tune in a single run."]})
    errors = {}
    if method not in (Sweep.GRID, Sweep.RANDOM):
        errors["method"] = [f"method must be grid or random, not {method!r}."]
    if metric not in SWEEP_METRICS:
        errors["metric"] = [f"metric must be one of {', '.join(SWEEP_METRICS)}, not {metric!r}."]
    if not isinstance(space, dict) or not space:
        errors["space"] = ["Choose at least one hyperparameter to search, with its candidate values."]
    else:
        for key, values in space.items():
            if key not in SWEEPABLE:
                errors.setdefault("space", []).append(f"{key} cannot be swept; choose from {', '.join(SWEEPABLE)}.")
            elif is_range(values):
                problems = _range_errors(key, values, method)
                if problems:
                    errors.setdefault("space", []).extend(problems)
            elif not isinstance(values, list) or not values:
                errors.setdefault("space", []).append(
                    f"{key}: give a non-empty list of values, or a range "
                    '{"min": …, "max": …, "log": true} for random search.'
                )
            else:
                for v in values:
                    bad = config_errors({key: v})
                    if bad:
                        errors.setdefault("space", []).append(bad[key])
    if not isinstance(max_trials, int) or not 1 <= max_trials <= MAX_SWEEP_TRIALS:
        errors["max_trials"] = [f"max_trials must be between 1 and {MAX_SWEEP_TRIALS}."]
    if errors:
        raise ValidationError(errors)
    if method == Sweep.GRID and grid_size(space) > MAX_SWEEP_TRIALS:  # counted, never built
        raise ValidationError(
            {
                "space": [
                    f"The grid has {grid_size(space):,} combinations, over the "
                    f"{MAX_SWEEP_TRIALS} limit; use random search or fewer values."
                ]
            }
        )
    trials = sweep_trials(method=method, space=space, max_trials=max_trials, seed=base["seed"])
    sweep = Sweep.objects.create(
        project=project,
        dataset_version=version,
        name=clean_name(name)[:120],
        method=method,
        base_config=base,
        space=space,
        max_trials=len(trials),
        metric=metric,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    for i, params in enumerate(trials):
        training_run_create(
            project=project,
            user=user,
            dataset_version=version,
            config={**base, **params},
            name=f"{sweep.name or 'sweep'} #{sweep.pk}.{i + 1}",
            sweep=sweep,
            trial_index=i,
        )
    audit_record(
        actor=user,
        action="sweep.launch",
        project=project,
        obj=sweep,
        data={"method": method, "space": space, "trials": len(trials), "metric": metric},
    )
    return sweep


def sweep_refresh(*, sweep_id):
    """Settle a sweep from its runs: running while any runs; when all finished, the best succeeded
    trial by the sweep's validation metric."""
    sweep = Sweep.objects.get(pk=sweep_id)
    runs = list(sweep.runs.all())
    if any(r.status in JobStatus.ACTIVE for r in runs):
        if any(r.status != JobStatus.QUEUED for r in runs):
            transition(Sweep, sweep_id, JobStatus.QUEUED, JobStatus.RUNNING)
        return sweep
    done = [r for r in runs if r.status == JobStatus.SUCCEEDED and sweep.metric in (r.best_val or {})]
    if done:
        pick = max if sweep.higher_is_better else min
        best = pick(done, key=lambda r: r.best_val[sweep.metric])
        transition(Sweep, sweep_id, JobStatus.ACTIVE, JobStatus.SUCCEEDED, best_run=best, finished_at=timezone.now())
    elif all(r.status == JobStatus.CANCELLED for r in runs):
        transition(Sweep, sweep_id, JobStatus.ACTIVE, JobStatus.CANCELLED, finished_at=timezone.now())
    else:
        transition(
            Sweep, sweep_id, JobStatus.ACTIVE, JobStatus.FAILED, finished_at=timezone.now(), error="No trial succeeded."
        )
    sweep.refresh_from_db()
    return sweep


def sweep_cancel(*, sweep, user):
    for run in sweep.runs.filter(status__in=JobStatus.ACTIVE):
        try:
            training_run_cancel(run=run, user=user)
        except ValidationError:
            pass  # it finished meanwhile
    audit_record(actor=user, action="sweep.cancel", project=sweep.project, obj=sweep)
    return sweep_refresh(sweep_id=sweep.pk)


# Review --------------------------------------------------------------------------------------------


def misclassified_send_to_review(*, run, item_ids, user):
    """Queue test images the run got wrong for a second look by labelers. Returns the count queued."""
    wrong = {p["item"]: p for p in run.predictions if p["true"] != p["pred"]}
    bad = [i for i in item_ids if i not in wrong]
    if bad:
        raise ValidationError({"items": [f"Item {bad[0]} is not a misclassified test image of {run}."]})
    classes = run.test_metrics.get("classes") or run.dataset_version.classes
    queued = 0
    for item in Item.objects.filter(pk__in=item_ids, project=run.project):
        p = wrong[item.pk]
        reason = (
            f"Run {run.pk} predicted {classes[p['pred']]} ({p['confidence']:.0%}) for a test image "
            f"labeled {classes[p['true']]}"
        )
        queue_for_review(item=item, reason=reason, requested_by=user)
        queued += 1
    audit_record(
        actor=user,
        action="training_run.review_requested",
        project=run.project,
        obj=run,
        data={"items": list(item_ids), "queued": queued},
    )
    return queued
