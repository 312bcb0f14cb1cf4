"""Celery shims for the ``profile`` queue (routed by mlportal/celery.py): take an id, call a service."""

from celery import shared_task

from . import services


@shared_task(name="apps.profiling.tasks.profile_run_execute", ignore_result=True, acks_late=True)
def profile_run_execute(run_id):
    services.profile_run_execute(run_id=run_id)
