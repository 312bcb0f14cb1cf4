"""Object storage, for real: the whole path of a model through an S3 API (moto's server on loopback,
tests/integration/s3server.py) with STORAGE_BACKEND=s3 in the test process and in a real worker.

Upload and ingest (worker), thumbnails and image views, freezing a version and its profile (worker),
training (worker), registering, the gate's champion re-evaluation on another dataset version (read
through the storage API: S3 has no local path), serving's model load and a prediction, the bundle
download. No file of any of it lands on the local disk. Then the store goes away: an upload answers
503 "storage unavailable" and nothing is half-written."""

import io
import zipfile

import pytest
from django.conf import settings

from apps.core.models import Blob
from apps.datasets.models import ImportJob, Item
from apps.datasets.services import dataset_version_create
from apps.profiling.models import ProfileRun
from apps.registry import services as registry
from apps.serving.services import project_token_create
from apps.training import services as training
from apps.training.models import TrainingRun
from tests.factories import approve_scope

from .conftest import wait_for
from .s3server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
CONFIG = {
    "architecture": "tiny_cnn",
    "image_size": 64,
    "channels": 1,
    "epochs": 2,
    "batch_size": 4,
    "augmentation": "none",
    "early_stopping": False,
}


@pytest.fixture
def s3(settings):
    try:
        server = S3Server().start().make_bucket()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    settings.STORAGES = server.storages(settings.STORAGES)
    yield server
    server.close()


def _local_files():
    root = settings.MEDIA_ROOT
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _wait_status(model, pk, done, worker, what, timeout=300):
    def check():
        status = model.objects.filter(pk=pk).values_list("status", flat=True).first()
        return status in done and status

    try:
        return wait_for(check, timeout=timeout, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: {model.objects.get(pk=pk).status}\n{worker.output()[-4000:]}") from None


def test_a_model_goes_through_object_storage_end_to_end(
    project, people, s3, screws, api, client, celery_worker_process
):
    folder, rows = screws
    picked = [r for r in rows if r["label"] == "good"][:10] + [r for r in rows if r["label"] != "good"][:10]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for r in picked:
            z.writestr(
                f"{'good' if r['label'] == 'good' else 'defect'}/{r['path'].replace('/', '_')}",
                (folder / r["path"]).read_bytes(),
            )
    worker = celery_worker_process(queues=["ingest", "profile", "training", "default"], **s3.env())
    from django.core.files.uploadedfile import SimpleUploadedFile

    # Upload and ingest.
    r = api(people["ds"]).post(
        f"/api/v1/projects/{project.slug}/data/imports/",
        {"files": [SimpleUploadedFile("screws.zip", buf.getvalue())], "labels_from_folders": "true"},
        format="multipart",
    )
    assert r.status_code == 201, r.data
    job = _wait_status(ImportJob, r.data["id"], ("done", "failed"), worker, "the import")
    assert job == "done", ImportJob.objects.get(pk=r.data["id"]).error
    items = list(Item.objects.filter(project=project).select_related("blob"))
    assert len(items) == 20
    keys = s3.keys()
    assert all(it.blob.path in keys for it in items)  # the photographs are in the bucket…
    assert _local_files() == []  # …and nowhere on the local disk

    # Thumbnails and image views read through the storage.
    client.force_login(people["labeler"])
    it = items[0]
    thumb = client.get(f"/p/{project.slug}/data/items/{it.pk}/thumb")
    image = client.get(f"/p/{project.slug}/data/items/{it.pk}/image")
    assert thumb.status_code == 200 and thumb["Content-Type"].startswith("image/")
    body = b"".join(image.streaming_content) if image.streaming else image.content
    from PIL import Image

    assert image.status_code == 200 and Image.open(io.BytesIO(body)).size == (1024, 1024)

    # A version, its profile, two trainings (a worker each time), one in production.
    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.0}])
    dv1 = dataset_version_create(project=project, user=people["ds"], seed=1)
    prof = ProfileRun.objects.filter(version=dv1).order_by("-id").first()
    assert prof is not None
    _wait_status(ProfileRun, prof.pk, ("succeeded", "failed"), worker, "the first profile")
    assert ProfileRun.objects.get(pk=prof.pk).status == "succeeded", ProfileRun.objects.get(pk=prof.pk).error
    run1 = training.training_run_create(
        project=project, user=people["ds"], dataset_version=dv1, config={**CONFIG, "seed": 1}
    )
    assert _wait_status(TrainingRun, run1.pk, ("succeeded", "failed"), worker, "run 1") == "succeeded", (
        TrainingRun.objects.get(pk=run1.pk).error
    )
    v1 = registry.model_version_register(
        run=TrainingRun.objects.get(pk=run1.pk), registered_model_name="screws", user=people["ds"]
    )
    req1 = registry.promotion_request_create(version=v1, user=people["ds"], note="first")
    assert req1.gate_passed, req1.gate
    registry.promotion_request_approve(request=req1, user=people["manager"])

    # The gate's champion re-evaluation: production v1 run now on dataset version 2's test split.
    dv2 = dataset_version_create(project=project, user=people["ds"], seed=2)
    prof2 = ProfileRun.objects.filter(version=dv2).order_by("-id").first()
    _wait_status(ProfileRun, prof2.pk, ("succeeded", "failed"), worker, "the second profile")
    run2 = training.training_run_create(
        project=project, user=people["ds"], dataset_version=dv2, config={**CONFIG, "seed": 2}
    )
    assert _wait_status(TrainingRun, run2.pk, ("succeeded", "failed"), worker, "run 2") == "succeeded"
    v2 = registry.model_version_register(
        run=TrainingRun.objects.get(pk=run2.pk), registered_model_name="screws", user=people["ds"]
    )
    req2 = registry.promotion_request_create(version=v2, user=people["ds"], note="second")
    champion = next(c for c in req2.gate["checks"] if c["key"] == "champion")
    assert champion["how"] == "evaluated" and "was run now on the test split" in champion["message"], champion

    # Serving loads production from the bucket and answers; the bundle downloads from it.
    _, key = project_token_create(project=project, user=people["ds"], name="s3")
    photo = (folder / picked[-1]["path"]).read_bytes()
    r = client.post(
        f"/api/v1/projects/{project.slug}/serving/models/screws/predict/",
        data=photo,
        content_type="image/png",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert r.status_code == 200 and r.json()["model_version"] == v1.number, r.content[:300]
    client.force_login(people["ds"])
    r = client.get(f"/p/{project.slug}/registry/models/{v1.registered_model_id}/versions/{v1.number}/bundle.zip")
    data = b"".join(r.streaming_content) if r.streaming else r.content
    assert r.status_code == 200 and "model.keras" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert _local_files() == []  # artifacts, thumbnails, profiles: all in the bucket

    # The store goes away: a clear 503, and nothing half-written. First the registrations' exports
    # finish in the worker (they store blobs of their own, which would move the count below).
    from apps.core.jobs import JobStatus
    from apps.registry.models import ExportRun

    wait_for(
        lambda: not ExportRun.objects.filter(status__in=JobStatus.ACTIVE).exists(), timeout=300, what="the exports"
    )
    before = (Item.objects.count(), Blob.objects.count(), ImportJob.objects.count())
    s3.stop()
    r = api(people["ds"]).post(
        f"/api/v1/projects/{project.slug}/data/imports/",
        {"files": [SimpleUploadedFile("one.png", photo)]},
        format="multipart",
    )
    assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.content[:500]
    assert "object storage" in r.json()["detail"]
    page = client.get(f"/p/{project.slug}/data/items/{it.pk}/image")
    assert page.status_code == 503 and b"Storage unavailable" in page.content
    assert (Item.objects.count(), Blob.objects.count(), ImportJob.objects.count()) == before
    assert _local_files() == []  # nor a staged copy left behind
