"""One prediction request from raw inputs to the answer: every input checked and decoded first (a
bad one never reaches a model), then the engine routes, batches and logs. The API and the "Try it"
page both answer through ``predict_images``."""

import os
import re
import threading
import time
import uuid

from django.conf import settings

from .engine import get_engine
from .inputs import decode_inputs

_decoding = None


def decode_slots():
    """At most SERVING_DECODE_THREADS requests decode at once (default: two per core). More would only
    share the same cores, each decode taking longer, while the threads fight over the GIL and the
    caches; the others wait their turn asleep."""
    global _decoding
    if _decoding is None:
        _decoding = threading.BoundedSemaphore(settings.SERVING_DECODE_THREADS or 2 * (os.cpu_count() or 1))
    return _decoding


REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_for(given=None):
    """The caller's X-Request-ID when it is sane, else a new one."""
    return given if given and REQUEST_ID.match(given) else uuid.uuid4().hex


def predict_images(*, registered_model, raws, ref=None, request_id=None, started=None, engine=None):
    started = started or time.perf_counter()
    request_id = request_id or uuid.uuid4().hex
    with decode_slots():
        decoded = decode_inputs(raws)  # InputError names the file
    try:
        plan, results = (engine or get_engine()).predict(
            registered_model, decoded, ref=ref, request_id=request_id, started=started
        )
    finally:
        for d in decoded:
            d.image.close()
    predictions = [{"index": d.index, "name": d.name, "sha256": d.sha256, **r} for d, r in zip(decoded, results)]
    answer = {
        "request_id": request_id,
        "model": registered_model.name,
        "model_version": plan.answer.number,
        "route": plan.route,
        "classes": plan.answer.classes,
        "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
        "predictions": predictions,
    }
    if len(predictions) == 1:  # one image: its answer at the top level too
        answer.update({k: predictions[0][k] for k in ("class", "confidence", "probabilities")})
    return answer
