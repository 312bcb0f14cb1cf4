"""One prediction request from raw inputs to the answer: every input checked and decoded first (a
bad one never reaches a model), then the engine routes, batches and logs. The API and the "Try it"
page both answer through ``predict_images``."""

import base64
import os
import re
import threading
import time
import uuid

from django.conf import settings

from .engine import ExplainUnavailable, get_engine
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


def predict_images(*, registered_model, raws, ref=None, request_id=None, started=None, engine=None, explain=False):
    """The answer for ``raws``. ``explain``: each prediction also carries ``heatmap``, a PNG data URI
    of the image as the model saw it with where it looked in red (Grad-CAM, or a patch recipe's own
    patch-score map); a model that cannot draw one says why in the answer's ``explain``."""
    started = started or time.perf_counter()
    request_id = request_id or uuid.uuid4().hex
    with decode_slots():
        decoded = decode_inputs(raws)  # InputError names the file
    heatmaps, why = [], ""
    try:
        plan, results = (engine or get_engine()).predict(
            registered_model, decoded, ref=ref, request_id=request_id, started=started
        )
        if explain:
            try:
                heatmaps = plan.answer.explain([d.array(**plan.answer.spec()) for d in decoded])
            except ExplainUnavailable as exc:
                why = str(exc)
    finally:
        for d in decoded:
            d.image.close()
    predictions = [{"index": d.index, "name": d.name, "sha256": d.sha256, **r} for d, r in zip(decoded, results)]
    for p, png in zip(predictions, heatmaps):
        p["heatmap"] = "data:image/png;base64," + base64.b64encode(png).decode()
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
    if why:
        answer["explain"] = why
    return answer
