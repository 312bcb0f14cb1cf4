"""Explicit job statuses, changed only by a compare-and-set UPDATE on the old status."""
from django.db import transaction
from django.utils import timezone


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


def dispatch(task, *args, **kwargs):
    """Send a Celery task once the current transaction commits, so the worker sees the row."""
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
