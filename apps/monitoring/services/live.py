"""Live accuracy: a sample of production inputs sent to labeling, to be compared with what the model said."""

import datetime as dt
import hashlib
import io

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from apps.core.storage import blob_read
from apps.datasets.models import Item
from apps.labeling.services import queue_for_review
from apps.serving.models import PredictionLog

from ..models import (
    LiveSample,
)
from ..rollups import low_confidence_below

# Live accuracy --------------------------------------------------------------------------------------


def _item_for_blob(project, blob, name):

    item = Item.objects.filter(project=project, sha256=blob.sha256).first()
    if item:
        return item
    with Image.open(io.BytesIO(blob_read(blob))) as im:
        w, h, mode, fmt = im.width, im.height, im.mode, im.format or ""
    item, _ = Item.objects.get_or_create(
        project=project,
        sha256=blob.sha256,
        defaults=dict(
            blob=blob,
            original_name=name,
            width=w,
            height=h,
            mode=mode,
            format=fmt,
            bytes=blob.size,
            source="prediction",
        ),
    )
    return item


def _draw(pk, seed=None):
    digest = hashlib.sha256(f"{seed or ''}:{pk}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def live_sample_collect(*, project, since=None, low_limit=None, random_share=None, seed=None):
    """Send production inputs to the labeling queue: every kept low-confidence one first (lowest
    confidence first, up to ``low_limit``), then a random ``random_share`` of the other kept ones.
    Each becomes an Item (source="prediction") once; returns the LiveSamples made."""

    low_limit = low_limit if low_limit is not None else getattr(settings, "MONITORING_LOW_CONFIDENCE_LIMIT", 50)
    random_share = random_share if random_share is not None else getattr(settings, "MONITORING_RANDOM_SHARE", 0.05)
    since = since or timezone.now() - dt.timedelta(days=1)
    kept = PredictionLog.objects.filter(project=project, created_at__gte=since, input_blob__isnull=False).exclude(
        pk__in=LiveSample.objects.filter(project=project, predicted_at__gte=since).values("prediction_id")
    )
    threshold = low_confidence_below()
    low = list(
        kept.filter(confidence__lt=threshold).order_by("confidence", "id").values_list("pk", flat=True)[:low_limit]
    )
    rest = kept.filter(confidence__gte=threshold).values_list("pk", flat=True)
    # Each prediction's draw depends on its id alone, so ticks that see it again draw the same: the
    # share stays ``random_share`` however often the collection runs.
    picked = [pk for pk in rest if _draw(pk, seed) < random_share] if random_share > 0 else []
    made = []
    logs = PredictionLog.objects.select_related("input_blob", "model_version__registered_model").in_bulk(low + picked)
    for pk, reason in [(pk, "low_confidence") for pk in low] + [(pk, "random") for pk in picked]:
        p = logs[pk]
        with transaction.atomic():
            item = _item_for_blob(
                project, p.input_blob, f"prediction-{p.request_id or p.pk}.{(p.input_blob.path.rsplit('.', 1)[-1])}"
            )
            sample, created = LiveSample.objects.get_or_create(
                prediction=p,
                defaults=dict(
                    project=project,
                    model_version=p.model_version,
                    item=item,
                    reason=reason,
                    predicted_class=p.predicted_class,
                    predicted_at=p.created_at,
                ),
            )
            if created:
                why = "low confidence" if reason == "low_confidence" else "random live-accuracy sample"
                queue_for_review(
                    item=item,
                    reason=f"Production input ({why}): {p.model_version} said "
                    f"{p.predicted_class} at {p.confidence:.0%}",
                )
                made.append(sample)
    return made
