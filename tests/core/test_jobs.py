from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import reaper
from apps.core.audit import audit_record
from apps.core.jobs import TransitionError, transition, transition_or_raise
from apps.core.models import AuditEvent
from apps.datasets.models import ImportJob

pytestmark = pytest.mark.django_db


def test_transition_is_compare_and_set(project):
    job = ImportJob.objects.create(project=project)
    assert transition(ImportJob, job.pk, "queued", "running", started_at=timezone.now())
    assert not transition(ImportJob, job.pk, "queued", "running")  # a second worker loses the race
    with pytest.raises(TransitionError, match="is running, not queued"):
        transition_or_raise(ImportJob, job.pk, "queued", "done")


def test_reaper_fails_jobs_whose_heartbeat_stopped(project):
    reaper.register_reapable(ImportJob)
    now = timezone.now()
    stale = ImportJob.objects.create(
        project=project, status="running", started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(minutes=10)
    )
    alive = ImportJob.objects.create(
        project=project, status="running", started_at=now - timedelta(hours=1), heartbeat_at=now
    )
    never = ImportJob.objects.create(project=project, status="running", started_at=now - timedelta(hours=1))
    assert reaper.reap_stuck_jobs(timeout_seconds=120) == 2
    stale.refresh_from_db(), alive.refresh_from_db(), never.refresh_from_db()
    assert stale.status == never.status == "failed" and "heartbeats" in stale.error
    assert alive.status == "running"


def test_audit_record_keeps_who_what_why(project, people):
    event = audit_record(actor=people["manager"], project=project, action="scope.approved", obj=project, reason="ok")
    assert AuditEvent.objects.get(pk=event.pk).object_repr == project.name
    assert event.object_type == "projects.project" and event.actor == people["manager"]


def test_each_queue_has_its_time_limits_and_a_task_may_tighten_them(settings, monkeypatch):
    """Per-queue soft and hard limits from settings, put on the message by dispatch; a task's own
    tighter limits win; a signature sent to another queue (a GPU run) takes that queue's."""
    from apps.core.jobs import _publish, queue_of, time_limits
    from apps.registry.tasks import webhook_deliver
    from apps.training.tasks import run_training

    settings.CELERY_QUEUE_TIME_LIMITS = {
        **settings.CELERY_QUEUE_TIME_LIMITS,
        "gpu": (7000, 7100),
        "training": (5000, 5100),
        "default": (900, 960),
    }
    assert queue_of(run_training) == "training" and time_limits(run_training, "training") == (5000, 5100)
    gpu = run_training.s(1).set(queue="gpu")
    assert queue_of(gpu) == "gpu" and time_limits(gpu, "gpu") == (7000, 7100)
    assert queue_of(webhook_deliver) == "default" and time_limits(webhook_deliver, "default") == (60, 90)
    sent = []
    monkeypatch.setattr(type(gpu), "apply_async", lambda self, *a, **kw: sent.append(kw))
    _publish(gpu, (1,), {})
    assert sent[0]["soft_time_limit"] == 7000 and sent[0]["time_limit"] == 7100


def test_time_limits_are_read_from_the_environment_and_checked():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "import django; django.setup(); from django.conf import settings; print(settings.CELERY_QUEUE_TIME_LIMITS['ingest'])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlportal.settings", "CELERY_TIME_LIMIT_INGEST": "600,660"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "(600, 660)", out.stderr[-500:]
    env["CELERY_TIME_LIMIT_INGEST"] = "700,600"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "soft limit must be under the hard one" in out.stderr
