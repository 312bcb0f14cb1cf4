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
    stale = ImportJob.objects.create(project=project, status="running", started_at=now - timedelta(hours=1),
                                     heartbeat_at=now - timedelta(minutes=10))
    alive = ImportJob.objects.create(project=project, status="running", started_at=now - timedelta(hours=1),
                                     heartbeat_at=now)
    never = ImportJob.objects.create(project=project, status="running", started_at=now - timedelta(hours=1))
    assert reaper.reap_stuck_jobs(timeout_seconds=120) == 2
    stale.refresh_from_db(), alive.refresh_from_db(), never.refresh_from_db()
    assert stale.status == never.status == "failed" and "heartbeats" in stale.error
    assert alive.status == "running"


def test_audit_record_keeps_who_what_why(project, people):
    event = audit_record(actor=people["manager"], project=project, action="scope.approved", obj=project, reason="ok")
    assert AuditEvent.objects.get(pk=event.pk).object_repr == project.name
    assert event.object_type == "projects.project" and event.actor == people["manager"]
