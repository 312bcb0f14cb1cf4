"""Explicit job statuses, changed only by a compare-and-set UPDATE on the old status; and the one
place where jobs are handed to the broker (``dispatch``)."""

import functools
import logging
import threading
import time

from celery import current_app as celery_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import APIException

log = logging.getLogger(__name__)


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CHOICES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)]
    ACTIVE = (QUEUED, RUNNING)
    FINISHED = (SUCCEEDED, FAILED, CANCELLED)


class TransitionError(Exception):
    """The row was not in the status the caller expected (someone else moved it first)."""


def transition(model, pk, old, new, **fields):
    """Move row ``pk`` of ``model`` from status ``old`` (one status or a tuple) to ``new``.

    Returns True when this call made the move; False when the row was not in ``old``.
    """
    olds = old if isinstance(old, (tuple, list, set)) else (old,)
    return model.objects.filter(pk=pk, status__in=olds).update(status=new, **fields) == 1


def transition_or_raise(model, pk, old, new, **fields):
    if not transition(model, pk, old, new, **fields):
        current = model.objects.filter(pk=pk).values_list("status", flat=True).first()
        raise TransitionError(f"{model.__name__} {pk} is {current}, not {old}; cannot move it to {new}")


def heartbeat(model, pk):
    """A running job's sign of life; the reaper fails jobs whose heartbeat stopped."""
    return model.objects.filter(pk=pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now()) == 1


def step_delay():
    """A pause per unit of work (image, batch) so that fault tests can kill a worker mid-job.

    Honoured only when PORTAL_ENV=test (settings.JOB_STEP_DELAY_SECONDS is 0 otherwise)."""
    if settings.JOB_STEP_DELAY_SECONDS:
        time.sleep(settings.JOB_STEP_DELAY_SECONDS)


# Dispatch ----------------------------------------------------------------------------------------

QUEUE_UNAVAILABLE = (
    "The task queue is unavailable (the broker cannot be reached), so nothing was started. Try again in a minute."
)
# A publish retries this briefly, then gives up: a request must not hang on a dead broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


class QueueUnavailable(APIException):
    """The broker refused a job. The job rows concerned were marked failed with that reason
    (``jobs``: [{"type", "id"}]). The API answers 503; a page shows the message."""

    status_code = 503
    default_code = "queue_unavailable"

    def __init__(self, jobs=()):
        self.jobs = list(jobs)
        super().__init__(QUEUE_UNAVAILABLE, code="queue_unavailable")


_launch = threading.local()


def queue_of(task):
    """The queue ``task`` (a task or a signature) goes to: the signature's own, else the route."""
    import fnmatch

    queue = (getattr(task, "options", None) or {}).get("queue")
    if queue:
        return queue
    name = getattr(task, "task", None) or getattr(task, "name", "")
    for pattern, route in (celery_app.conf.task_routes or {}).items():
        if fnmatch.fnmatchcase(name, pattern):
            return route.get("queue", celery_app.conf.task_default_queue)
    return celery_app.conf.task_default_queue


def time_limits(task, queue):
    """(soft, hard) seconds for ``task`` on ``queue``: the queue's limits (settings.CELERY_QUEUE_TIME_LIMITS),
    or the task's own where it sets tighter ones. None: no limit."""
    own = getattr(task, "type", None) or task  # a signature's task
    out = []
    for queue_limit, task_limit in zip(
        settings.CELERY_QUEUE_TIME_LIMITS.get(queue, (None, None)),
        (getattr(own, "soft_time_limit", None), getattr(own, "time_limit", None)),
    ):
        given = [x for x in (queue_limit, task_limit) if x]
        out.append(min(given) if given else None)
    return tuple(out)


def _publish(task, args, kwargs):
    """``task`` is a task or a signature (``run_training.s(pk).set(queue=…)``): both take this call.
    The message carries its queue's time limits (a worker serves several queues)."""
    soft, hard = time_limits(task, queue_of(task))
    limits = {k: v for k, v in (("soft_time_limit", soft), ("time_limit", hard)) if v}
    return task.apply_async(args=args, kwargs=kwargs, retry=True, retry_policy=PUBLISH_RETRY_POLICY, **limits)


def _broker_errors():
    from kombu.exceptions import OperationalError

    errors = (OperationalError, ConnectionError, TimeoutError)
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout

        errors += (RedisConnectionError, RedisTimeout)
    except ImportError:
        pass
    return errors


def task_named(name):
    """The registered Celery task ``name``. Services name the task they start, as beat's schedule
    does, so that a service never imports the tasks module that imports it; the first lookup runs
    Celery's autodiscovery (every app's ``tasks`` module), which a web process has not needed yet."""
    tasks = celery_app.tasks
    if name not in tasks:
        celery_app.loader.import_default_modules()
    return tasks[name]


def dispatch(task, *args, job=None, on_unavailable=None, **kwargs):
    """Send a Celery task (its name, the task, or a signature) once the current transaction commits,
    so the worker sees the row.

    When the broker cannot be reached, the job row ``job`` (a model instance with a ``status``)
    is marked failed with the reason "queue unavailable" — never left queued with no message
    behind it — and the ``launches_jobs`` service that asked raises QueueUnavailable. Nothing
    else the transaction wrote is undone: the failed row is the record of the attempt.
    ``on_unavailable()`` then tidies what the job alone needed (staged files, say).
    Without ``job`` (webhooks, follow-up chunks) the failure is logged and the caller goes on."""
    ref = (type(job), job.pk) if job is not None else None
    if isinstance(task, str):
        task = task_named(task)

    def send():
        if celery_app.conf.task_always_eager:  # tests: run in-process, let the task's own errors through
            return _publish(task, args, kwargs)
        try:
            _publish(task, args, kwargs)
        except _broker_errors() as exc:
            log.error("broker unavailable: could not queue %s%s: %s", getattr(task, "name", task), args, exc)
            if ref is not None:
                model, pk = ref
                transition(
                    model, pk, JobStatus.QUEUED, JobStatus.FAILED, finished_at=timezone.now(), error=QUEUE_UNAVAILABLE
                )
                if getattr(_launch, "depth", 0):
                    _launch.failed.append({"type": model._meta.model_name, "id": pk})
            if on_unavailable is not None:
                on_unavailable()

    transaction.on_commit(send)


def launches_jobs(fn):
    """For a service that starts jobs: raise QueueUnavailable after it returns when any job it
    dispatched could not be queued. Called inside an outer transaction it only passes through —
    its messages go at the outer commit, and the job rows say what happened."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if transaction.get_connection().in_atomic_block:
            return fn(*args, **kwargs)
        if not getattr(_launch, "depth", 0):
            _launch.depth, _launch.failed = 0, []
        _launch.depth += 1
        mark = len(_launch.failed)
        try:
            result = fn(*args, **kwargs)
        finally:
            _launch.depth -= 1
            failed = _launch.failed[mark:]
            del _launch.failed[mark:]
        if failed:
            raise QueueUnavailable(jobs=failed)
        return result

    return wrapper
