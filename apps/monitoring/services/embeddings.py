"""The reference embeddings of a model version (what embedding drift compares production with)."""

from django.conf import settings
from django.utils import timezone

from apps.core.jobs import JobStatus, dispatch, transition
from apps.core.storage import blob_read
from apps.registry.artifacts import artifact_bytes

from ..embedder import embed_images
from ..models import (
    ReferenceEmbedding,
)

# Reference embeddings -------------------------------------------------------------------------------


def reference_embedding_start(*, model_version):
    ref, created = ReferenceEmbedding.objects.get_or_create(model_version=model_version)
    if not created and not transition(
        ReferenceEmbedding, ref.pk, (JobStatus.FAILED, JobStatus.CANCELLED), JobStatus.QUEUED, error=""
    ):
        return ref
    dispatch("apps.monitoring.tasks.reference_embedding_execute", ref.pk, job=ref)
    return ref


def reference_embedding_execute(*, ref_id):
    """Embed (a spread-out sample of) the version's train split with the registered .keras model."""

    ref = ReferenceEmbedding.objects.select_related("model_version__dataset_version").get(pk=ref_id)
    if not transition(
        ReferenceEmbedding,
        ref.pk,
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    ):
        return ref
    mv = ref.model_version
    try:
        limit = getattr(settings, "MONITORING_REFERENCE_EMBEDDINGS", 200)
        entries = list(
            mv.dataset_version.entries.filter(split="train").select_related("item__blob").order_by("item_id")
        )
        step = max(1, len(entries) // limit)
        images = [blob_read(e.item.blob) for e in entries[::step][:limit]]
        spec = mv.input_spec or {}
        vectors = embed_images(
            artifact_bytes(mv, "keras"),
            images,
            image_size=int(spec.get("image_size", 128)),
            channels=int(spec.get("channels", 1)),
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the job row; the drift report just lacks embeddings
        transition(
            ReferenceEmbedding,
            ref.pk,
            JobStatus.RUNNING,
            JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        ref.refresh_from_db()
        return ref
    transition(
        ReferenceEmbedding, ref.pk, JobStatus.RUNNING, JobStatus.SUCCEEDED, finished_at=timezone.now(), vectors=vectors
    )
    ref.refresh_from_db()
    return ref
