"""Celery shims for the ``training`` queue (and ``gpu`` for runs that ask for an accelerator).

acks_late + reject_on_worker_lost (settings) redeliver a run whose worker died; the service's
compare-and-set on ``queued`` makes that redelivery a no-op, and the reaper fails the run whose
heartbeat stopped, so it can be retried by a person.
"""

from celery import shared_task

from . import services


@shared_task(name="apps.training.tasks.run_training", bind=True, ignore_result=True)
def run_training(self, run_id):
    # Training may last hours: its queue's limits (CELERY_TIME_LIMIT_TRAINING / _GPU, a day by default)
    # come with the message; cancellation and the reaper bound it too.
    services.training_run_execute(run_id=run_id, worker=self.request.hostname or "")
