"""core.jobs.dispatch with a broker that refuses every message (its publish patched to fail as a dead
Redis does; the real thing is tests/integration/test_fault_redis_down.py): the job row is marked
failed with "queue unavailable", the launching service raises QueueUnavailable (503), and nothing
is left queued with no message behind it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from kombu.exceptions import OperationalError

from apps.core import jobs
from apps.core.jobs import QueueUnavailable
from apps.datasets import services as datasets
from apps.datasets.models import ImportJob
from apps.profiling.models import ProfileRun
from apps.profiling.services import profile_run_start
from apps.training.models import Sweep, TrainingRun
from apps.training.services import sweep_create
from tests.factories import label_classes, make_item, make_version, mark_profiled, png_bytes, set_label

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down(monkeypatch):
    sent = []

    def refuse(task, args, kwargs):
        sent.append(task)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(jobs, "_publish", refuse)
    return sent


@pytest.fixture
def version(project):
    good, defect = label_classes(project)
    entries = []
    for i in range(4):
        item = make_item(project, data=png_bytes(size=(32, 32), seed=40 + i))
        set_label(item, good if i % 2 else defect)
        entries.append((item, ["train", "train", "val", "test"][i], "good" if i % 2 else "defect"))
    version = make_version(project, entries)
    mark_profiled(version)
    return version


def test_a_refused_launch_fails_its_row_and_raises_queue_unavailable(broker_down, version, people):
    with pytest.raises(QueueUnavailable) as err:
        profile_run_start(version=version, user=people["ds"])
    run = ProfileRun.objects.get(version=version, status="failed")
    assert err.value.jobs == [{"type": "profilerun", "id": run.pk}] and err.value.status_code == 503
    assert "queue is unavailable" in run.error and run.finished_at
    assert not ProfileRun.objects.filter(status__in=["queued", "running"]).exists()


def test_a_sweep_whose_trials_cannot_be_queued_fails_whole(broker_down, version, people, project):
    with pytest.raises(QueueUnavailable) as err:
        sweep_create(
            project=project,
            user=people["ds"],
            dataset_version=version,
            base_config={"architecture": "tiny_cnn", "image_size": 32, "channels": 1, "epochs": 1},
            space={"learning_rate": [0.001, 0.01]},
        )
    sweep = Sweep.objects.get()
    assert len(err.value.jobs) == 2 and sweep.status == "failed"
    assert set(TrainingRun.objects.values_list("status", flat=True)) == {"failed"}


def test_an_automatic_profile_inside_a_freeze_does_not_undo_the_version(broker_down, project, people, version):
    from apps.datasets.services import dataset_version_create

    frozen = dataset_version_create(project=project, user=people["ds"])  # no exception: the version is made
    assert frozen.status == "ready"
    assert ProfileRun.objects.get(version=frozen).status == "failed"


def test_a_refused_import_frees_its_uploads_and_deletes_its_staged_files(broker_down, project, people, settings):
    ds = people["ds"]
    upload = datasets.upload_create(project=project, user=ds, filename="a.png", size=len(png_bytes(seed=1)))
    datasets.upload_chunk_append(upload=upload, offset=0, data=png_bytes(seed=1))
    upload.refresh_from_db()
    with pytest.raises(QueueUnavailable):
        datasets.import_uploads_start(project=project, user=ds, upload_ids=[upload.pk])
    upload.refresh_from_db()
    assert upload.job_id is None and (settings.MEDIA_ROOT / upload.staged_path).exists()  # import it again later
    with pytest.raises(QueueUnavailable):
        datasets.import_files_start(project=project, user=ds, files=[SimpleUploadedFile("b.png", png_bytes(seed=2))])
    staged = {
        p.relative_to(settings.MEDIA_ROOT).as_posix()
        for p in (settings.MEDIA_ROOT / "staging").rglob("*")
        if p.is_file()
    }
    assert staged == {upload.staged_path}
    assert set(ImportJob.objects.values_list("status", flat=True)) == {"failed"}


def test_a_page_form_shows_the_message_on_the_page_it_came_from(broker_down, client, project, people, version):
    client.force_login(people["ds"])
    page = f"/p/{project.slug}/profile/"
    r = client.post(
        f"/p/{project.slug}/profile/start/", {"version": version.number}, HTTP_REFERER=f"http://testserver{page}"
    )
    assert r.status_code == 303 and r["Location"] == f"http://testserver{page}"
    assert b"queue is unavailable" in client.get(page).content
    r = client.post(f"/p/{project.slug}/profile/start/", {"version": version.number})  # no Referer: a 503 page
    assert r.status_code == 503 and b"Queue unavailable" in r.content


def test_the_api_answers_503_json_naming_the_failed_job(broker_down, api, project, people, version):
    r = api(people["ds"]).post(
        f"/api/v1/projects/{project.slug}/training/runs/",
        {
            "dataset_version": version.number,
            "config": {"architecture": "tiny_cnn", "image_size": 32, "channels": 1, "epochs": 1},
        },
        format="json",
    )
    assert r.status_code == 503 and r["Retry-After"], r.content
    body = r.json()
    assert body["code"] == "queue_unavailable" and body["jobs"][0]["type"] == "trainingrun"
    assert TrainingRun.objects.get(pk=body["jobs"][0]["id"]).status == "failed"


def test_a_dispatch_without_a_job_row_only_logs(broker_down, caplog):
    from django.db import transaction

    from apps.core.tasks import probe

    with transaction.atomic():
        jobs.dispatch(probe, 1)
    assert broker_down and "broker unavailable" in caplog.text


def test_services_start_tasks_by_name_and_every_name_is_a_registered_task():
    """A service never imports the tasks module that imports it: it names the task (as beat's
    schedule does), and the name resolves to the task the worker runs."""
    import pathlib
    import re

    from apps.core.jobs import task_named

    root = pathlib.Path(__file__).resolve().parents[2] / "apps"
    names, importers = set(), []
    for path in root.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'"(apps\.\w+\.tasks\.\w+)"', text))
        if path.name != "tasks.py" and re.search(r"^\s+from \.\.?tasks import", text, re.M):
            importers.append(str(path.relative_to(root)))
    assert importers == []
    assert len(names) >= 9
    for name in sorted(names):
        assert task_named(name).name == name
