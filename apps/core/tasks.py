from celery import shared_task
from django.utils import timezone

from . import reaper
from .models import WorkerProbe


@shared_task(name="apps.core.tasks.reap_stuck_jobs", ignore_result=True)
def reap_stuck_jobs():
    return reaper.reap_stuck_jobs()


@shared_task(name="apps.core.tasks.probe", ignore_result=True, bind=True)
def probe(self, probe_id):

    WorkerProbe.objects.filter(pk=probe_id, completed_at__isnull=True).update(
        completed_at=timezone.now(), worker=self.request.hostname or ""
    )
