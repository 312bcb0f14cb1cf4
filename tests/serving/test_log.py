"""The prediction log: one row per prediction, spooled to disk before the answer and written to the
database in batches off the request path; kept images; a logging failure never fails a prediction."""

import time

import pytest

from apps.monitoring.models import PredictionRollup
from apps.serving.logwriter import LogWriter
from apps.serving.models import PredictionLog, PredictionLogLoss
from apps.serving.signals import predictions_logged
from tests.factories import png_bytes
from tests.training.conftest import tiny_png

from .conftest import predict_url
from .test_api import post_files

pytestmark = pytest.mark.django_db


def test_every_prediction_writes_one_row_with_what_monitoring_reads(project, people, served, engine, api, settings):
    settings.SERVING_LOG_SAMPLE_RATE = 0.0
    r = post_files(
        api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect")), ("b.png", tiny_png(2, "good"))
    )
    assert r.status_code == 200
    assert not PredictionLog.objects.exists()  # the database is not on the request path…
    assert engine.writer.spool.records == 2 and engine.writer.pending_bytes() > 0  # …the spool on disk is
    assert engine.writer.flush() == 2
    rows = list(PredictionLog.objects.order_by("batch_index"))
    assert [(x.predicted_class, x.batch_index, x.route) for x in rows] == [
        ("defect", 0, "production"),
        ("good", 1, "production"),
    ]
    a = rows[0]
    assert a.model_version == served and a.registered_model == served.registered_model and a.project == project
    assert a.request_id == r.json()["request_id"] and a.latency_ms > 0 and a.created_at is not None
    import hashlib

    assert a.input_sha256 == hashlib.sha256(tiny_png(1, "defect")).hexdigest()
    assert {"width", "height", "bytes", "brightness", "contrast", "sharpness", "entropy", "format"} <= set(
        a.input_stats
    )
    assert a.input_stats["width"] == 32 and a.input_stats["brightness"] > 150
    assert a.confidence == max(a.probabilities.values()) and set(a.probabilities) == {"defect", "good"}
    assert a.input_blob is None  # confident, and no sample
    # Monitoring's rollups heard of the batch (the shared contract).
    assert PredictionRollup.objects.get(model_version=served).count == 2


def test_low_confidence_inputs_and_a_sample_are_kept_as_blobs(project, people, served, engine, api, settings):
    from apps.core.storage import blob_read

    settings.SERVING_LOG_SAMPLE_RATE = 0.0
    settings.SERVING_LOW_CONFIDENCE = 0.9
    grey = png_bytes(size=(32, 32), value=128)  # mean brightness 0.5: the tiny model hesitates
    post_files(api(people["ds"]), predict_url(project), ("grey.png", grey), ("sure.png", tiny_png(1, "defect")))
    engine.writer.flush()
    unsure, sure = PredictionLog.objects.order_by("batch_index")
    assert unsure.confidence < 0.9 and unsure.input_blob is not None and blob_read(unsure.input_blob) == grey
    assert sure.input_blob is None
    settings.SERVING_LOG_SAMPLE_RATE = 1.0
    post_files(api(people["ds"]), predict_url(project), ("sure.png", tiny_png(1, "defect")))
    engine.writer.flush()
    assert PredictionLog.objects.order_by("-id").first().input_blob is not None


def test_the_writer_thread_batches_by_rows_and_by_time(transactional_db, project, served):
    """The real background thread (committed data: it has its own connection)."""
    received = []

    def listen(sender, logs, **kw):
        received.append(len(logs))

    predictions_logged.connect(listen)
    try:
        w = LogWriter(flush_rows=5, flush_ms=200)
        for i in range(12):
            assert w.put(_row(served, i))
        deadline = time.time() + 20
        # The signal goes out after each batch commits: wait for the rows and for the listeners.
        while time.time() < deadline and (PredictionLog.objects.count() < 12 or sum(received) < 12):
            time.sleep(0.05)
        assert PredictionLog.objects.count() == 12 and w.written == 12
        assert sum(received) == 12 and max(received) <= 5 and w.flushes >= 3  # ≤ N rows per insert; the rest by time
        w.stop()
    finally:
        predictions_logged.disconnect(listen)


def _row(version, i):
    from django.utils import timezone

    return {
        "project_id": version.registered_model.project_id,
        "registered_model_id": version.registered_model_id,
        "model_version_id": version.pk,
        "created_at": timezone.now(),
        "request_id": f"r{i}",
        "batch_index": 0,
        "route": "production",
        "latency_ms": 1.0,
        "input_sha256": "0" * 64,
        "input_stats": {},
        "predicted_class": "good",
        "confidence": 0.9,
        "probabilities": {"good": 0.9, "defect": 0.1},
    }


def test_a_database_that_fails_keeps_the_rows_in_the_spool_and_never_fails_a_prediction(
    project, people, served, engine, api, monkeypatch
):
    from django.db import OperationalError

    def broken(batch):
        raise OperationalError("database is on fire")

    monkeypatch.setattr(engine.writer, "write", broken)
    r = post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect")))
    assert r.status_code == 200 and r.json()["class"] == "defect"
    assert engine.writer.flush() == 0 and engine.writer.failed == 1
    assert engine.writer.pending_bytes() > 0 and engine.writer.lost_total == 0  # waiting, not lost
    monkeypatch.undo()
    r = post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect")))
    assert engine.writer.flush() == 2 and PredictionLog.objects.count() == 2  # both, once the database is back
    assert engine.writer.pending_bytes() == 0


def test_a_failing_spool_or_listener_never_fails_a_prediction(project, people, served, engine, api, monkeypatch):
    def boom(*a, **kw):
        raise RuntimeError("spool broken")

    monkeypatch.setattr(engine.writer.spool, "append", boom)
    r = post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect")))
    assert r.status_code == 200 and engine.writer.lost_total == 1
    monkeypatch.undo()

    def bad_listener(sender, logs, **kw):
        raise RuntimeError("rollups down")

    predictions_logged.connect(bad_listener)
    try:
        r = post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect")))
        assert r.status_code == 200
        assert engine.writer.flush() == 1 and PredictionLog.objects.count() == 1
    finally:
        predictions_logged.disconnect(bad_listener)
    assert PredictionLogLoss.objects.get().reason == "spool error"  # the lost row, counted and stored


def test_logging_can_be_switched_off(project, people, served, engine, api, settings):
    settings.SERVING_LOG_ENABLED = False
    assert post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect"))).status_code == 200
    assert engine.writer.flush() == 0
