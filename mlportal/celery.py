import os

from celery import Celery
from kombu import Queue
from kombu.transport import TRANSPORT_ALIASES

# The embedded broker, with message files written whole (see apps/core/broker.py).
TRANSPORT_ALIASES["filesystem"] = "apps.core.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlportal.settings")

app = Celery("mlportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(q) for q in ("default", "ingest", "profile", "training", "gpu")]
# Each queue gets its own limits; a task module may tighten them per task.
app.conf.task_routes = {
    "apps.datasets.tasks.*": {"queue": "ingest"},
    "apps.profiling.tasks.*": {"queue": "profile"},
    "apps.training.tasks.*": {"queue": "training"},
    "apps.registry.tasks.*": {"queue": "default"},
}
app.conf.beat_schedule = {
    "reap-stuck-jobs": {"task": "apps.core.tasks.reap_stuck_jobs", "schedule": 30.0},
    "monitoring-tick": {"task": "apps.monitoring.tasks.monitoring_tick", "schedule": 60.0},
}
app.autodiscover_tasks()
