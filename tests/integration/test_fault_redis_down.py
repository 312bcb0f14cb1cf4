"""Fault: the broker (Redis) stops while the portal runs, then comes back.

Against a Redis server of the test's own (a free port; the shared one is never touched), with the
portal under gunicorn and a real Celery worker, both pointed at it:
- pages still serve (GET 200) and /readyz reports the broker down (503);
- launching an import, a profile or a training run answers 503 "queue unavailable" (JSON from the
  API; a message on the page for a form) and leaves nothing half-done: the job row is marked
  failed with that reason (core.jobs.dispatch) and its staged files are gone;
- when Redis is back, the very next launches succeed and the worker runs them — no restart of
  the web server or the worker.
"""

import json
import secrets

import pytest
from django.conf import settings

from apps.accounts.models import Role
from apps.accounts.services import api_token_create
from apps.core.jobs import JobStatus
from apps.datasets.models import ImportFile, ImportJob, Item
from apps.profiling.models import ProfileRun
from apps.training.models import TrainingRun
from tests.factories import (
    ProjectFactory,
    label_classes,
    make_item,
    make_version,
    mark_profiled,
    member,
    png_bytes,
    set_label,
)

from .conftest import database_url, wait_for
from .faults import OwnRedis, WebServer, cookie_header, cookies_set, http, multipart

pytestmark = pytest.mark.integration
RUN_CONFIG = {
    "architecture": "tiny_cnn",
    "image_size": 32,
    "channels": 1,
    "epochs": 1,
    "batch_size": 2,
    "augmentation": "none",
    "early_stopping": False,
    "seed": 1,
}


@pytest.fixture
def own_redis():
    try:
        redis = OwnRedis().start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield redis
    redis.close()


def _staged_files():
    staging = settings.MEDIA_ROOT / "staging"
    return sorted(p for p in staging.rglob("*") if p.is_file()) if staging.exists() else []


def test_redis_down_pages_serve_launches_refuse_cleanly_and_recover(own_redis, celery_worker_process, client, tmp_path):
    project = ProjectFactory()
    ds = member(project, Role.DATA_SCIENTIST, username="ds-redis")
    good, defect = label_classes(project)
    entries = []
    for i in range(6):
        item = make_item(project, data=png_bytes(size=(32, 32), seed=100 + i))
        set_label(item, good if i % 2 else defect)
        entries.append((item, ["train", "train", "val", "val", "test", "test"][i], "good" if i % 2 else "defect"))
    version = make_version(project, entries)
    mark_profiled(version)
    _, key = api_token_create(user=ds, name="faults")
    api = {"Authorization": f"Bearer {key}"}
    client.force_login(ds)
    csrf = secrets.token_hex(16)
    browser = {"Cookie": cookie_header({"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf})}

    worker = celery_worker_process(queues=["ingest", "profile", "default"], CELERY_BROKER_URL=own_redis.url)
    server = WebServer(
        {
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": own_redis.url,
            "CACHE_URL": own_redis.url[:-1] + "1",
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PORTAL_VAR_DIR": str(tmp_path / "web-var"),
        },
        tmp_path,
    ).start()
    base, slug = server.url, project.slug
    try:
        ready = json.loads(http("GET", base + "/readyz")[2])
        assert ready["checks"]["broker"]["ok"], ready

        own_redis.stop()  # ------------------------------------------------------------- Redis down

        for path in (
            "/",
            f"/p/{slug}/",
            f"/p/{slug}/data/",
            f"/p/{slug}/profile/",
            f"/p/{slug}/training/",
            f"/p/{slug}/training/new/",
            f"/p/{slug}/data/upload/",
        ):
            status, _, body = http("GET", base + path, headers=browser)
            assert status == 200, (path, status, body[:300], server.output())
        status, _, body = http("GET", base + "/readyz")
        ready = json.loads(body)
        assert status == 503 and ready["checks"]["broker"]["ok"] is False and ready["checks"]["database"]["ok"]

        # The API: an import of two files, a profile, a training run — each 503 "queue unavailable".
        body, ctype = multipart({}, [("files", "a.png", png_bytes(seed=1)), ("files", "b.png", png_bytes(seed=2))])
        status, headers, raw = http(
            "POST", f"{base}/api/v1/projects/{slug}/data/imports/", data=body, headers={**api, "Content-Type": ctype}
        )
        answer = json.loads(raw)
        assert status == 503 and answer["code"] == "queue_unavailable", (status, raw[:500], server.output())
        assert "queue is unavailable" in answer["detail"] and headers.get("Retry-After")
        job = ImportJob.objects.get(pk=answer["jobs"][0]["id"])
        assert answer["jobs"] == [{"type": "importjob", "id": job.pk}]
        assert job.status == "failed" and "queue is unavailable" in job.error
        assert _staged_files() == [] and not Item.objects.filter(import_job=job).exists()

        status, _, raw = http(
            "POST", f"{base}/api/v1/projects/{slug}/profiling/runs/", headers=api, json_body={"version": version.number}
        )
        answer = json.loads(raw)
        assert status == 503 and answer["code"] == "queue_unavailable", raw[:500]
        assert ProfileRun.objects.get(pk=answer["jobs"][0]["id"]).status == JobStatus.FAILED
        assert not ProfileRun.objects.filter(version=version, status__in=JobStatus.ACTIVE).exists()

        status, _, raw = http(
            "POST",
            f"{base}/api/v1/projects/{slug}/training/runs/",
            headers=api,
            json_body={"dataset_version": version.number, "config": RUN_CONFIG},
        )
        answer = json.loads(raw)
        assert status == 503 and answer["code"] == "queue_unavailable", raw[:500]
        run = TrainingRun.objects.get(pk=answer["jobs"][0]["id"])
        assert run.status == JobStatus.FAILED and "queue is unavailable" in run.error

        # A form: back to the page it came from, which shows the message.
        page = f"{base}/p/{slug}/profile/"
        status, headers, _ = http(
            "POST",
            f"{base}/p/{slug}/profile/start/",
            headers={**browser, "Referer": page},
            data=f"version={version.number}&csrfmiddlewaretoken={csrf}".encode(),
        )
        assert status == 303 and headers["Location"] == page, status
        shown = cookies_set(headers)
        status, _, html = http("GET", page, headers={"Cookie": browser["Cookie"] + "; " + cookie_header(shown)})
        assert status == 200 and b"queue is unavailable" in html
        assert not ProfileRun.objects.filter(version=version, status__in=JobStatus.ACTIVE).exists()

        own_redis.start()  # ----------------------------------------------------------- Redis back

        status, _, raw = http(
            "POST", f"{base}/api/v1/projects/{slug}/profiling/runs/", headers=api, json_body={"version": version.number}
        )
        assert status == 202, raw[:500]
        profile = ProfileRun.objects.get(pk=json.loads(raw)["id"])
        body, ctype = multipart({}, [("files", "a.png", png_bytes(seed=1)), ("files", "b.png", png_bytes(seed=2))])
        status, _, raw = http(
            "POST", f"{base}/api/v1/projects/{slug}/data/imports/", data=body, headers={**api, "Content-Type": ctype}
        )
        assert status == 201, raw[:500]
        job = ImportJob.objects.get(pk=json.loads(raw)["id"])
        status, _, raw = http(
            "POST",
            f"{base}/api/v1/projects/{slug}/training/runs/",
            headers=api,
            json_body={"dataset_version": version.number, "config": RUN_CONFIG},
        )
        assert status == 201 and json.loads(raw)["status"] == "queued", raw[:500]

        def both_done():
            profile.refresh_from_db(), job.refresh_from_db()
            return profile.status in JobStatus.FINISHED and job.status in ("done", "failed")

        wait_for(both_done, timeout=45, what=f"the worker to run the new jobs; it said:\n{worker.output()[-3000:]}")
        assert profile.status == JobStatus.SUCCEEDED and profile.processed == 6, profile.error
        assert job.status == "done" and job.accepted == 2 and ImportFile.objects.filter(job=job).count() == 2
        status, _, body = http("GET", base + "/readyz")
        assert json.loads(body)["checks"]["broker"]["ok"] is True
    finally:
        server.stop()
