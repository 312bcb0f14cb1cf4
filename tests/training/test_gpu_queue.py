"""A run queued for the GPU while no live worker listens on the gpu queue says so on its page (and in
the live API the page polls) and is failed with that reason after GPU_QUEUE_WAIT_SECONDS."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.models import WorkerHeartbeat
from apps.core.reaper import reap_stuck_jobs
from apps.training import services

from .conftest import TINY

pytestmark = pytest.mark.django_db


def gpu_worker(last_seen=None, queues=("gpu",)):
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        hostname=f"w-{len(queues)}-{now.timestamp()}", queues=list(queues), started_at=now, last_seen=last_seen or now
    )


def test_a_gpu_run_with_no_listener_says_so_then_fails_after_the_wait(project, people, version, settings, api):
    settings.GPU_QUEUE_WAIT_SECONDS = 300
    gpu_worker(queues=("default", "training"))  # a live worker, but not on the gpu queue
    run = services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, "accelerator": "gpu"}
    )
    cpu_run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    assert run.queue == "gpu"
    c = Client()
    c.force_login(people["labeler"])
    page = c.get(f"/p/{project.slug}/training/runs/{run.pk}/").content.decode()
    assert "No live worker listens on the gpu queue" in page and 'id="run-waiting"' in page
    live = api(people["labeler"]).get(f"/api/v1/projects/{project.slug}/training/runs/{run.pk}/live/").json()
    assert live["waiting"].startswith("No live worker listens on the gpu queue")
    assert reap_stuck_jobs(now=timezone.now() + timedelta(seconds=200)) == 0  # still within the wait
    run.refresh_from_db()
    assert run.status == "queued"
    reap_stuck_jobs(now=timezone.now() + timedelta(seconds=301))
    run.refresh_from_db()
    cpu_run.refresh_from_db()
    assert run.status == "failed" and "No live worker listened on the gpu queue for 5 minutes" in run.error
    assert cpu_run.status == "queued"  # a training-queue run is not this rule's business


def test_a_live_gpu_worker_keeps_the_run_waiting_quietly(project, people, version, settings, api):
    settings.GPU_QUEUE_WAIT_SECONDS = 300
    gpu_worker()
    run = services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, "accelerator": "gpu"}
    )
    live = api(people["ds"]).get(f"/api/v1/projects/{project.slug}/training/runs/{run.pk}/live/").json()
    assert live["waiting"] == ""
    reap_stuck_jobs(now=timezone.now() + timedelta(seconds=301))
    run.refresh_from_db()
    assert run.status == "queued"
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(hours=1))  # the worker went silent
    live = api(people["ds"]).get(f"/api/v1/projects/{project.slug}/training/runs/{run.pk}/live/").json()
    assert "No live worker" in live["waiting"]
