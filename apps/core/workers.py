"""Workers write their own heartbeat row, from a thread started when the worker is ready."""

import os
import threading

from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from .models import WorkerHeartbeat

_stop = threading.Event()
_state = {"hostname": None, "queues": [], "started": None, "active": 0}


def _beat_once():

    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=_state["hostname"],
        defaults={
            "pid": os.getpid(),
            "queues": _state["queues"],
            "started_at": _state["started"],
            "last_seen": now,
            "active": _state["active"],
        },
    )


def _loop():
    while not _stop.is_set():
        try:
            close_old_connections()
            _beat_once()
        except Exception:  # noqa: BLE001 - the database may be restarting; the next beat tries again
            pass
        _stop.wait(settings.CELERY_WORKER_HEARTBEAT_SECONDS)


@worker_ready.connect
def _on_ready(sender=None, **kwargs):
    _state["hostname"] = sender.hostname
    _state["queues"] = (
        sorted(q.name for q in sender.app.amqp.queues.consume_from.values())
        if sender.app.amqp.queues.consume_from
        else []
    )
    _state["started"] = timezone.now()
    threading.Thread(target=_loop, name="portal-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _on_shutdown(**kwargs):
    _stop.set()
    if _state["hostname"]:
        try:
            WorkerHeartbeat.objects.filter(hostname=_state["hostname"]).delete()
        except Exception:  # noqa: BLE001
            pass


@task_prerun.connect
def _on_task_start(**kwargs):
    _state["active"] += 1


@task_postrun.connect
def _on_task_end(**kwargs):
    _state["active"] = max(0, _state["active"] - 1)
