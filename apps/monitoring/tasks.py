from celery import shared_task

from . import services


@shared_task(name="apps.monitoring.tasks.monitoring_tick", ignore_result=True)
def monitoring_tick():
    services.monitoring_tick()


@shared_task(name="apps.monitoring.tasks.reference_embedding_execute", ignore_result=True)
def reference_embedding_execute(ref_id):
    services.reference_embedding_execute(ref_id=ref_id)
