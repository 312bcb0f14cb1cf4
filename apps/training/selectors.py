"""Reads, always scoped to a project the caller is a member of (the views resolve it first)."""

from datetime import timedelta

from django.db.models import Min
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.core.jobs import JobStatus
from apps.core.models import Blob
from apps.core.selectors import queue_has_listener
from apps.core.stages import Forecast, StageSpan, StageState
from apps.core.storage import blob_open
from apps.datasets.models import DatasetVersion

from .models import Sweep, TrainingRun


def runs_of(project):
    return (
        TrainingRun.objects.filter(project=project)
        .select_related("dataset_version", "created_by", "sweep")
        .order_by("-id")
    )


def run_get(project, pk):
    return get_object_or_404(TrainingRun.objects.select_related("dataset_version", "project"), project=project, pk=pk)


def sweeps_of(project):
    return Sweep.objects.filter(project=project).select_related("dataset_version", "best_run").order_by("-id")


def sweep_get(project, pk):
    return get_object_or_404(Sweep.objects.select_related("dataset_version"), project=project, pk=pk)


def ready_versions(project):

    return DatasetVersion.objects.filter(project=project, status="ready").order_by("-number")


def run_live(run):
    """What the run page polls: status, progress, ETA, every epoch so far, the log's tail."""
    return {
        "id": run.pk,
        "status": run.status,
        "progress": round(run.progress, 4),
        "eta_seconds": None if run.eta_seconds is None else round(run.eta_seconds),
        "epochs_total": run.epochs_total,
        "epochs_done": run.epochs_done,
        "current_batch": run.current_batch,
        "batches_per_epoch": run.batches_per_epoch,
        "cancel_requested": run.cancel_requested,
        "error": run.error,
        "epochs": [{"epoch": e.epoch, "seconds": e.seconds, **e.metrics} for e in run.epochs.all()],
        "log": run.log[-20_000:],
        "test_metrics": {k: v for k, v in (run.test_metrics or {}).items() if k != "curves"},
        "waiting": waiting_reason(run),
    }


def waiting_reason(run):
    """Why a queued run is not starting ("" when nothing is known to hold it): no live worker listens on
    the gpu queue. Said on the run page within a heartbeat; the reaper fails it after the wait."""
    from django.conf import settings

    if run.status != "queued" or run.queue != "gpu" or queue_has_listener(run.queue):
        return ""
    deadline = run.created_at + timedelta(seconds=settings.GPU_QUEUE_WAIT_SECONDS)
    return (
        f"No live worker listens on the gpu queue: this run waits, and fails at "
        f"{timezone.localtime(deadline):%H:%M} unless a GPU worker starts "
        "(docker compose --profile gpu up worker-gpu, or celery -A mlportal worker -Q gpu on a GPU host)."
    )


def misclassified(run, true=None, pred=None):
    """Test predictions that were wrong, optionally in one confusion-matrix cell (class names)."""
    classes = (run.test_metrics or {}).get("classes") or run.dataset_version.classes
    rows = []
    for p in run.predictions or []:
        t, q = classes[p["true"]], classes[p["pred"]]
        if (true is not None and t != true) or (pred is not None and q != pred):
            continue
        if true is None and pred is None and p["true"] == p["pred"]:
            continue
        rows.append(
            {"item": p["item"], "true": t, "pred": q, "confidence": p["confidence"], "heatmap": p.get("heatmap", "")}
        )
    return rows


def heatmap_data_uri(sha256):
    """A stored heatmap PNG (a blob of this run's predictions) as a data: URI, or "" when missing."""
    import base64

    blob = Blob.objects.filter(sha256=sha256, content_type="image/png").first() if sha256 else None
    if blob is None:
        return ""
    with blob_open(blob) as fh:
        return "data:image/png;base64," + base64.b64encode(fh.read()).decode()


def compare_rows(runs):
    """One row per run: hyperparameters and headline metrics, for the table and parallel coordinates."""
    rows = []
    for r in runs:
        m = r.test_metrics or {}
        rows.append(
            {
                "run": r,
                "id": r.pk,
                "config": r.config,
                "best_val": r.best_val or {},
                "accuracy": m.get("accuracy"),
                "macro_f1": m.get("macro_f1"),
                "pointing_game": m.get("pointing_game"),
                "localization_iou": m.get("localization_iou"),
                "val_accuracy": (r.best_val or {}).get("val_accuracy"),
                "training_seconds": r.training_seconds,
            }
        )
    return rows


DEFAULT_PLANNED_RUNS = 10


def compute_forecast(project, plan, now):
    """The plan's compute hours, from the project's finished runs: minutes per epoch and epochs per
    run as measured, times the runs the plan still expects (10 in all unless the plan says)."""
    done = list(
        TrainingRun.objects.filter(project=project, status=JobStatus.SUCCEEDED).values_list(
            "training_seconds", "seconds_per_epoch", "epochs_run"
        )
    )
    planned = (plan.planned_runs if plan and plan.planned_runs else None) or max(DEFAULT_PLANNED_RUNS, len(done))
    timed = [(s, e, n) for s, e, n in done if s]
    if not timed:
        return Forecast(
            "compute_hours",
            None,
            f"No finished run timed yet; {planned} runs planned.",
            unit="h",
            stage="training",
        )
    spent = sum(s for s, _, _ in timed)
    per_run = spent / len(timed)
    epochs = [e for _, e, _ in timed if e]
    per_epoch = sum(epochs) / len(epochs) if epochs else None
    mean_epochs = sum(n for _, _, n in timed) / len(timed)
    left = max(planned - len(done), 0)
    hours = (spent + left * per_run) / 3600
    rate = f"{per_epoch / 60:.1f} min per epoch, " if per_epoch else ""
    basis = (
        f"{rate}{mean_epochs:.0f} epochs a run on average: {per_run / 60:.1f} min a run over {len(timed)} "
        f"finished run{'s' if len(timed) != 1 else ''}; {left} more of {planned} planned."
    )
    return Forecast(
        "compute_hours",
        round(hours, 2),
        basis,
        unit="h",
        stage="training",
        rates={"seconds_per_epoch": per_epoch, "seconds_per_run": per_run, "runs_left": left},
    )


def training_stage_span(project):
    """Training began with the first run and was done when one succeeded."""
    runs = TrainingRun.objects.filter(project=project)
    started = runs.aggregate(t=Min("created_at"))["t"]
    done = runs.filter(status=JobStatus.SUCCEEDED).aggregate(t=Min(Coalesce("finished_at", "updated_at")))["t"]
    return StageSpan(started, done)


def training_stage_state(project):
    runs = TrainingRun.objects.filter(project=project)
    if not runs.exists():
        return StageState("not_started", "No training runs yet")
    if runs.filter(status__in=JobStatus.ACTIVE).exists():
        return StageState("in_progress", f"{runs.filter(status__in=JobStatus.ACTIVE).count()} run(s) active")
    best = runs.filter(status=JobStatus.SUCCEEDED).order_by("-id").first()
    if best is None:
        return StageState("attention", "No run has succeeded")
    acc = (best.test_metrics or {}).get("accuracy")
    return StageState("done", f"Run #{best.pk}: test accuracy {acc:.3f}" if acc is not None else f"Run #{best.pk}")
