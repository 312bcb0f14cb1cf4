"""Infrastructure numbers: queue depths, workers, jobs, storage and health, sampled by beat."""

from celery import current_app as celery_app
from django.db.models import Count, Sum
from django.utils import timezone

from apps.core import health
from apps.core.models import Blob, WorkerHeartbeat
from apps.core.selectors import live_workers
from apps.datasets.models import ImportJob, Item
from apps.profiling.models import ProfileRun
from apps.training.models import Artifact, TrainingRun

from .models import InfraSample
from .rollups import minute_of

QUEUES = ("default", "ingest", "profile", "training", "gpu")


def queue_depths():
    """Messages waiting per Celery queue, asked of the broker's own transport (Redis: LLEN of each
    queue; the filesystem broker: the queue's message files)."""
    out = {}
    with celery_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        channel = conn.default_channel
        for q in QUEUES:
            try:
                out[q] = int(channel._size(q))
            except Exception:  # noqa: BLE001 - a queue the broker never saw has no depth yet
                out[q] = 0
    return out


def job_counts():
    """{job model: {status: n}} for the running and failed jobs of every app."""

    out = {}
    for model in (ImportJob, ProfileRun, TrainingRun):
        rows = model.objects.filter(status__in=("running", "failed")).values("status").annotate(n=Count("id"))
        counts = {"running": 0, "failed": 0}
        counts.update({r["status"]: r["n"] for r in rows})
        out[model.__name__] = counts
    return out


def storage_used():
    """Bytes of distinct blobs by what they are: item images, thumbnails, training artifacts."""

    def total(ids):
        return Blob.objects.filter(pk__in=ids).aggregate(s=Sum("size"))["s"] or 0

    return {
        "images": total(Item.objects.values("blob_id")),
        "thumbnails": total(Item.objects.exclude(thumbnail=None).values("thumbnail_id")),
        "artifacts": total(Artifact.objects.values("blob_id")),
    }


def health_checks():
    return {"database": health._check(health.check_database), "broker": health._check(health.check_broker)}


def workers_now():
    live = set(live_workers().values_list("hostname", flat=True))
    return [
        {
            "hostname": w.hostname,
            "last_seen": w.last_seen.isoformat(),
            "active": w.active,
            "queues": w.queues,
            "live": w.hostname in live,
        }
        for w in WorkerHeartbeat.objects.order_by("hostname")
    ]


def snapshot():
    """Everything at once (the page's 'now' panel and /metrics)."""
    checks = health_checks()
    try:
        queues = queue_depths()
    except Exception as exc:  # noqa: BLE001 - the broker being down is itself a number we report
        queues = {}
        checks["broker"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}", "ms": 0}
    workers = workers_now()
    return {
        "queues": queues,
        "workers": workers,
        "live_workers": sum(1 for w in workers if w["live"]),
        "jobs": job_counts(),
        "storage": storage_used(),
        "health": checks,
    }


def infra_sample_take(now=None):
    """Store this minute's snapshot (idempotent per minute: a second call updates it)."""
    s = snapshot()
    minute = minute_of(now or timezone.now())
    sample, _ = InfraSample.objects.update_or_create(taken_at=minute, defaults=s)
    return sample
