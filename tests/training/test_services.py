import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.core.models import AuditEvent
from apps.core.reaper import reap_stuck_jobs
from apps.training import services
from apps.training.models import Artifact, EpochMetric, Sweep, TrainingRun

from .conftest import TINY

pytestmark = pytest.mark.django_db


def launch(project, people, version, **config):
    return services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, **config}
    )


def test_launch_queues_on_the_training_queue_after_commit(project, people, version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        run = launch(project, people, version)
    assert run.status == "queued" and run.queue == "training" and run.epochs_total == 1
    assert run.config["seed"] == 42 and run.config["learning_rate"] == 0.001  # defaults filled in
    assert len(callbacks) == 1
    assert AuditEvent.objects.filter(action="training_run.launch", object_id=str(run.pk)).exists()


def test_gpu_runs_go_to_the_gpu_queue(project, people, version, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    from apps.training import tasks

    monkeypatch.setattr(tasks.run_training, "apply_async", lambda *a, **kw: sent.append(kw.get("queue")), raising=False)
    with django_capture_on_commit_callbacks(execute=True):
        run = launch(project, people, version, accelerator="gpu", mixed_precision=True)
    assert run.queue == "gpu" and run.config["mixed_precision"] is True
    assert sent == ["gpu"]


@pytest.mark.parametrize(
    "config, field, words",
    [
        ({"learning_rate": 3}, "learning_rate", "between"),
        ({"epochs": 0}, "epochs", "between 1"),
        ({"batch_size": 1000}, "batch_size", "between"),
        ({"image_size": 8}, "image_size", "between 16"),
        ({"architecture": "vgg"}, "architecture", "one of"),
        ({"mixed_precision": True}, "mixed_precision", "GPU"),
        ({"channels": 4}, "channels", "1 (grayscale) or 3"),
    ],
)
def test_out_of_range_hyperparameters_are_refused(project, people, version, config, field, words):
    with pytest.raises(ValidationError) as exc:
        launch(project, people, version, **config)
    assert words in " ".join(exc.value.message_dict[field])
    assert not TrainingRun.objects.exists()


def test_a_version_that_is_not_ready_is_refused(project, people, make_tiny_version):
    version = make_tiny_version(status="building")
    with pytest.raises(ValidationError, match="not ready"):
        launch(project, people, version)


def test_a_class_with_no_training_images_is_refused(project, people, make_tiny_version):
    # every "defect" lands in val/test: splits alternate train,val for good,defect
    version = make_tiny_version(n=8, splits=["train", "val", "train", "test"])
    with pytest.raises(ValidationError, match="'defect' has no training images"):
        launch(project, people, version)


def test_a_version_failing_its_blocking_assertions_is_refused(project, people, version):
    version.profile_runs.all().delete()  # no succeeded profile: the gate refuses
    with pytest.raises(ValidationError, match="blocking data-quality assertions: no_profile"):
        launch(project, people, version)
    from apps.profiling.services import gate_override

    gate_override(version=version, user=people["ds"], reason="Profiled by hand; the screws are fine.")
    assert launch(project, people, version).status == "queued"


def test_version_of_another_project_is_refused(project, people, version):
    from tests.factories import ProjectFactory

    with pytest.raises(ValidationError, match="No such dataset version"):
        services.training_run_create(project=ProjectFactory(), user=people["ds"], dataset_version=version.pk)


def test_execute_trains_evaluates_and_stores_artifacts(project, people, version):
    run = launch(project, people, version, epochs=2)
    services.training_run_execute(run_id=run.pk, worker="test@host")
    run.refresh_from_db()
    assert run.status == "succeeded", run.log
    assert run.started_at and run.finished_at and run.epochs_run == 2 and run.epochs_done == 2
    epochs = list(EpochMetric.objects.filter(run=run))
    assert [e.epoch for e in epochs] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epochs[0].metrics)
    m = run.test_metrics
    assert m["n"] == 4 and m["classes"] == ["defect", "good"]
    assert {"accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class", "confusion_matrix"} <= set(m)
    assert "roc" in m["curves"] and "pr" in m["curves"]
    test_ids = set(version.entries.filter(split="test").values_list("item_id", flat=True))
    assert {p["item"] for p in run.predictions} == test_ids
    arts = {a.kind: a for a in Artifact.objects.filter(run=run)}
    assert set(arts) == {"keras", "savedmodel", "model_card"}
    for a in arts.values():
        with default_storage.open(a.blob.path, "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == a.sha256
    card = run.model_card
    assert card["dataset"]["content_hash"] == version.content_hash and card["dataset"]["version"] == version.number
    assert card["seeds"] == {"training": 42, "split": version.seed}
    assert card["hyperparameters"]["epochs"] == 2 and card["environment"]["tensorflow"] == run.tf_version
    assert "0 split(s) from the cache of earlier runs, 3 decoded now" in run.log

    # A second run of the same version at the same size: its splits come from the first run's
    # decoded cache (no photograph decoded again), and it trains to the same result (same seed).
    again = launch(project, people, version, epochs=2)
    services.training_run_execute(run_id=again.pk, worker="test@host")
    again.refresh_from_db()
    assert again.status == "succeeded", again.log
    assert "3 split(s) from the cache of earlier runs, 0 decoded now" in again.log
    assert again.test_metrics["confusion_matrix"] == m["confusion_matrix"]
    assert card["training"]["seconds"] > 0 and "accuracy" in card["metrics"]["test"]
    assert "epoch 2/2" in run.log and run.best_val["val_accuracy_epoch"] in (1, 2)
    # a redelivered task (worker lost after finishing) does not train again
    assert services.training_run_execute(run_id=run.pk) is None
    assert EpochMetric.objects.filter(run=run).count() == 2


def test_cancel_a_queued_run_at_once(project, people, version):
    run = launch(project, people, version)
    services.training_run_cancel(run=run, user=people["ds"])
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert services.training_run_execute(run_id=run.pk) is None  # the worker skips it


def test_cancel_a_running_run_stops_it_within_a_batch(project, people, version, monkeypatch):
    run = launch(project, people, version, epochs=50, batch_size=2)
    calls = []
    original = EpochMetric.objects.update_or_create

    def cancel_during_first_epoch(**kw):
        calls.append(kw)
        services.training_run_cancel(run=TrainingRun.objects.get(pk=run.pk), user=people["ds"])
        return original(**kw)

    # the cancel arrives from the web while the worker trains (after the first epoch is written)
    monkeypatch.setattr(EpochMetric.objects, "update_or_create", cancel_during_first_epoch)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.cancel_requested
    assert run.epochs_run <= 2 and len(calls) <= 2
    assert not run.artifacts.exists()


def test_cancel_a_finished_run_is_refused(project, people, version):
    run = launch(project, people, version)
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded")
    with pytest.raises(ValidationError, match="only a queued or running run"):
        services.training_run_cancel(run=run, user=people["ds"])


def test_a_failure_is_recorded_with_its_reason(project, people, version, monkeypatch):
    run = launch(project, people, version)
    monkeypatch.setattr(
        "apps.training.ml.run.train_and_evaluate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("out of memory"))
    )
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "out of memory" in run.error and "Traceback" in run.log


def test_a_silent_worker_is_reaped_and_the_run_can_be_retried(project, people, version):
    run = launch(project, people, version)
    old = timezone.now() - timedelta(minutes=10)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", started_at=old, heartbeat_at=old)
    assert reap_stuck_jobs(timeout_seconds=60) >= 1
    run.refresh_from_db()
    assert run.status == "failed" and "heartbeat" in run.error
    retry = services.training_run_rerun(run=run, user=people["ds"])
    assert retry.status == "queued" and retry.retry_of == run and retry.config == run.config
    assert retry.dataset_version == run.dataset_version


def test_rerun_reproduces_the_split_and_seeds(project, people, version):
    first = launch(project, people, version, seed=7)
    services.training_run_execute(run_id=first.pk)
    second = services.training_run_rerun(run=TrainingRun.objects.get(pk=first.pk), user=people["ds"])
    services.training_run_execute(run_id=second.pk)
    first.refresh_from_db(), second.refresh_from_db()
    assert second.config == first.config and second.config["seed"] == 7
    assert [p["item"] for p in second.predictions] == [p["item"] for p in first.predictions]  # same test split
    assert second.model_card["seeds"] == first.model_card["seeds"]
    # (weights are not bit-identical on CPU: multi-threaded kernels sum in varying order)


def test_rerun_of_an_active_run_is_refused(project, people, version):
    run = launch(project, people, version)
    with pytest.raises(ValidationError, match="still queued"):
        services.training_run_rerun(run=run, user=people["ds"])


def test_finetune_from_an_uploaded_keras_file(project, people, version, tmp_path):
    from apps.training.ml import builders
    from apps.training.ml.config import TrainConfig

    base = builders.build_model(TrainConfig(architecture="tiny_cnn", image_size=32), 5)
    path = tmp_path / "base.keras"
    base.save(path)
    upload = SimpleUploadedFile("base.keras", path.read_bytes())
    run = services.training_run_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        config={**TINY, "architecture": "finetune"},
        base_model_file=upload,
    )
    assert run.base_model is not None
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.log


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("base.h5", b"x", "saved as a .keras file"),
        ("base.keras", b"not a model", "loads safely"),
    ],
)
def test_bad_finetune_uploads_are_refused(project, people, version, name, data, words):
    with pytest.raises(ValidationError) as exc:
        services.training_run_create(
            project=project,
            user=people["ds"],
            dataset_version=version,
            config={**TINY, "architecture": "finetune"},
            base_model_file=SimpleUploadedFile(name, data),
        )
    assert words in exc.value.message_dict["base_model"][0] and name in exc.value.message_dict["base_model"][0]


def test_finetune_without_a_file_is_refused(project, people, version):
    with pytest.raises(ValidationError, match="needs a .keras model"):
        launch(project, people, version, architecture="finetune")


def test_grid_sweep_runs_trials_and_picks_the_best_by_val_metric(project, people, version):
    sweep = services.sweep_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        base_config=TINY,
        space={"learning_rate": [0.01, 0.00001]},
        method="grid",
        metric="val_accuracy",
    )
    runs = list(sweep.runs.order_by("trial_index"))
    assert [r.config["learning_rate"] for r in runs] == [0.01, 0.00001] and sweep.max_trials == 2
    assert all(r.status == "queued" and r.queue == "training" for r in runs)
    services.training_run_execute(run_id=runs[0].pk)
    sweep.refresh_from_db()
    assert sweep.status == "running"
    services.training_run_execute(run_id=runs[1].pk)
    sweep.refresh_from_db()
    assert sweep.status == "succeeded"
    vals = {r.pk: TrainingRun.objects.get(pk=r.pk).best_val["val_accuracy"] for r in runs}
    assert vals[sweep.best_run_id] == max(vals.values())


def test_random_sweep_samples_n_trials(project, people, version):
    sweep = services.sweep_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        base_config=TINY,
        space={"learning_rate": [0.1, 0.01, 0.001], "batch_size": [2, 4, 8]},
        method="random",
        max_trials=4,
    )
    configs = [(r.config["learning_rate"], r.config["batch_size"]) for r in sweep.runs.all()]
    assert len(configs) == 4 and len(set(configs)) == 4


def test_sweep_picks_lowest_val_loss(project, people, version):
    sweep = services.sweep_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        base_config=TINY,
        space={"seed": [1, 2]},
        metric="val_loss",
    )
    a, b = sweep.runs.order_by("trial_index")
    TrainingRun.objects.filter(pk=a.pk).update(status="succeeded", best_val={"val_loss": 0.5})
    TrainingRun.objects.filter(pk=b.pk).update(status="succeeded", best_val={"val_loss": 0.2})
    assert services.sweep_refresh(sweep_id=sweep.pk).best_run_id == b.pk


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"space": {"momentum": [0.9]}}, "space"),
        ({"space": {"learning_rate": [5]}}, "space"),
        ({"space": {"learning_rate": []}}, "space"),
        ({"space": {"learning_rate": [0.1]}, "method": "bayes"}, "method"),
        ({"space": {"learning_rate": [0.1]}, "metric": "accuracy"}, "metric"),
        ({"space": {"learning_rate": [0.1]}, "max_trials": 0}, "max_trials"),
    ],
)
def test_bad_sweeps_are_refused(project, people, version, kw, field):
    with pytest.raises(ValidationError) as exc:
        services.sweep_create(project=project, user=people["ds"], dataset_version=version, base_config=TINY, **kw)
    assert field in exc.value.message_dict
    assert not Sweep.objects.exists() and not TrainingRun.objects.exists()


def test_sweep_cancel_cancels_its_trials(project, people, version):
    sweep = services.sweep_create(
        project=project, user=people["ds"], dataset_version=version, base_config=TINY, space={"seed": [1, 2]}
    )
    sweep = services.sweep_cancel(sweep=sweep, user=people["ds"])
    assert sweep.status == "cancelled"
    assert set(sweep.runs.values_list("status", flat=True)) == {"cancelled"}


def test_misclassified_images_go_to_the_labeling_queue(project, people, version):
    run = launch(project, people, version)
    test_items = list(version.entries.filter(split="test").values_list("item_id", flat=True))
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded",
        test_metrics={"classes": ["defect", "good"]},
        predictions=[
            {"item": test_items[0], "true": 0, "pred": 1, "confidence": 0.9},
            {"item": test_items[1], "true": 1, "pred": 1, "confidence": 0.8},
        ],
    )
    run.refresh_from_db()
    assert services.misclassified_send_to_review(run=run, item_ids=[test_items[0]], user=people["ds"]) == 1
    from apps.labeling.models import LabelTask

    task = LabelTask.objects.get(item_id=test_items[0])
    assert task.state == "open" and "predicted good (90%)" in task.reason and task.requested_by == people["ds"]
    with pytest.raises(ValidationError, match="not a misclassified test image"):
        services.misclassified_send_to_review(run=run, item_ids=[test_items[1]], user=people["ds"])


class NoPathStorage(Storage):
    """Like S3: files only through the storage API, no local path (Storage.path raises)."""

    def __init__(self, location):
        self.inner = FileSystemStorage(location=location)

    def _open(self, name, mode="rb"):
        return self.inner._open(name, mode)

    def _save(self, name, content):
        return self.inner._save(name, content)

    def exists(self, name):
        return self.inner.exists(name)

    def delete(self, name):
        return self.inner.delete(name)

    def size(self, name):
        return self.inner.size(name)


def test_training_reads_a_remote_storage_through_the_storage_api(
    project, people, settings, tmp_path, make_tiny_version
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.training.test_services.NoPathStorage",
            "OPTIONS": {"location": str(tmp_path / "remote")},
        },
    }
    version = make_tiny_version()
    sources, reader = services.storage_sources(["blobs/x.png"])
    assert sources == ["blobs/x.png"] and reader is not None
    run = launch(project, people, version)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.log
    assert run.test_metrics["n"] == 4 and run.artifacts.count() == 3
