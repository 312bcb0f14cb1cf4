"""Celery shims: take an id, call a service. Routed to the ``ingest`` queue (mlportal/celery.py)."""

from celery import shared_task

from . import services


@shared_task(name="apps.datasets.tasks.ingest_job", ignore_result=True, acks_late=True)
def ingest_job(job_id):
    services.import_job_run(job_id=job_id)


@shared_task(name="apps.datasets.tasks.ingest_chunk", ignore_result=True, acks_late=True)
def ingest_chunk(job_id, first_id, last_id):
    services.import_chunk_run(job_id=job_id, first_id=first_id, last_id=last_id)
