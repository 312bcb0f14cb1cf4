"""A run executed by a worker: its splits read from storage (and the decoded cache), the training
code driven with progress, heartbeat and cancellation, its artifacts and metrics stored."""

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import traceback

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.core.jobs import JobStatus, heartbeat, step_delay, transition
from apps.core.storage import blob_put
from apps.datasets.models import VersionItem

from ..ml.config import PATCH_RECIPES, TrainConfig
from ..ml.localize import localization_scores
from ..models import Artifact, EpochMetric, Sweep, TrainingRun
from .runs import sweep_refresh

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_SECONDS = 5.0


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
    from ..ml.run import SplitData

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
    from ..ml.data import DecodedCache

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

    from ..ml.run import train_and_evaluate

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
        from ..backbone_store import weights_to_file

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
            f"epoch {epoch}/{run.epochs_total} ({seconds:.1f} s): "
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
    for row, png in zip(predictions, result.heatmaps):  # where the model looked, per test image
        row["heatmap"] = blob_put(png, ext="png", content_type="image/png").sha256
    if result.heat_maps:  # where the test images carry labelers' boxes: does the heatmap point at them?
        frozen = {
            pk: (regions, (w, h))
            for pk, regions, w, h in VersionItem.objects.filter(version=version, item_id__in=test_ids).values_list(
                "item_id", "regions", "item__width", "item__height"
            )
        }
        where = [frozen.get(pk, ([], (1, 1))) for pk in test_ids]
        scores = localization_scores(
            result.heat_maps, [b for b, _ in where], [s for _, s in where], result.heat_geometry or None
        )
        if scores:
            result.metrics.update(localization=scores, **{k: scores[k] for k in ("pointing_game", "localization_iou")})
            _append_log(
                run_id,
                f"localization on {scores['images']} boxed test images: pointing game "
                f"{scores['pointing_game']:.3f}, IoU {scores['localization_iou']:.3f}",
            )
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
