"""The engine: micro-batching, hot swap without dropping a request, refusing a tampered artifact."""

import threading
import time

import pytest

from apps.core.models import Blob
from apps.serving.engine import Engine, ModelUnavailable, Retired
from apps.serving.inputs import RawInput, decode_input
from apps.serving.logwriter import LogWriter
from tests.training.conftest import tiny_png

pytestmark = pytest.mark.django_db


def decoded(i, label):
    return [decode_input(RawInput(0, f"{i}.png", tiny_png(i, label)))]


@pytest.fixture
def poll_engine():
    """The serving process's engine (pointers moved by ``refresh``, requests touch no table)."""
    eng = Engine(poll=True, writer=LogWriter(background=False))
    yield eng
    eng.stop()


def hammer(fn, n_threads, seconds=None, per_thread=None):
    """Call ``fn(i)`` from ``n_threads`` threads; returns (results, errors)."""
    results, errors, stop = [], [], threading.Event()

    def work(t):
        k = 0
        while (per_thread is None or k < per_thread) and not stop.is_set():
            try:
                results.append(fn(t * 1000 + k))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            k += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    return threads, stop, results, errors


def test_concurrent_requests_share_model_calls(project, served, poll_engine, settings):
    settings.SERVING_MAX_WAIT_MS = 100.0
    settings.SERVING_MAX_BATCH = 8
    poll_engine.refresh(served.registered_model)
    rm = served.registered_model
    inputs = {i: decoded(i, ("good", "defect")[i % 2]) for i in range(24)}
    barrier = threading.Barrier(24)

    def one(i):
        barrier.wait()
        return i, poll_engine.predict(rm, inputs[i % 1000])[1][0]["class"]

    threads, _, results, errors = hammer(one, 24, per_thread=1)
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 24
    assert all(cls == ("good", "defect")[i % 2] for i, cls in results)
    b = poll_engine.pointers[rm.pk].production.batcher
    assert b.images == 24 and b.calls < 24  # batched
    assert max(b.batch_sizes) <= 8  # and bounded


def test_a_batch_waits_at_most_max_wait(project, served, poll_engine, settings):
    settings.SERVING_MAX_WAIT_MS = 1.0
    poll_engine.refresh(served.registered_model)
    plan, results = poll_engine.predict(served.registered_model, decoded(1, "defect"))
    assert results[0]["class"] == "defect" and plan.route == "production"
    assert poll_engine.pointers[served.registered_model_id].production.batcher.batch_sizes == [1]


def test_hot_swap_under_concurrent_requests_drops_nothing(project, served, poll_engine, promote):
    rm = served.registered_model
    poll_engine.refresh(rm)
    old = poll_engine.pointers[rm.pk].production
    inputs = decoded(1, "defect")

    def one(i):
        plan, res = poll_engine.predict(rm, inputs)
        return plan.answer.number, res[0]["class"]

    threads, stop, results, errors = hammer(one, 6)
    time.sleep(0.5)
    v2 = promote()  # approved in the registry: the pointer has not moved yet
    n_before = len(results)
    assert {v for v, _ in results} == {1}
    poll_engine.refresh(rm)  # loads v2 fully, then moves the pointer
    deadline = time.time() + 30
    while time.time() < deadline and sum(1 for v, _ in results[n_before:] if v == v2.number) < 10:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert {v for v, _ in results} == {1, v2.number} and all(c == "defect" for _, c in results)
    # Once the pointer moved, nothing more came from v1.
    first_v2 = next(i for i, (v, _) in enumerate(results) if v == v2.number)
    assert all(v == v2.number for v, _ in results[first_v2 + 50 :])
    assert (old.version_id, "keras") not in poll_engine.models and poll_engine.swaps == 2  # v1 unloaded
    with pytest.raises(Retired):
        old.batcher.submit([inputs[0].array(image_size=32, channels=1)])


def test_a_request_that_caught_the_old_pointer_is_retried_on_the_new_one(project, served, poll_engine, promote):
    rm = served.registered_model
    poll_engine.refresh(rm)
    old = poll_engine.pointers[rm.pk].production
    v2 = promote()
    real_plan = poll_engine.plan
    calls = []

    def plan_then_swap(*a, **kw):
        p = real_plan(*a, **kw)
        if not calls:
            poll_engine.refresh(rm)  # the swap lands between plan and submit
        calls.append(p.answer.number)
        return p

    poll_engine.plan = plan_then_swap
    plan, res = poll_engine.predict(rm, decoded(1, "defect"))
    assert calls == [1, v2.number] and plan.answer.number == v2.number and old.batcher._closed


def test_an_artifact_whose_hash_does_not_match_is_never_loaded(project, served, poll_engine, promote, caplog):
    from django.core.files.storage import default_storage

    rm = served.registered_model
    poll_engine.refresh(rm)
    v2 = promote("good3", 40.0)
    blob = Blob.objects.get(pk=v2.artifacts["keras"]["blob_id"])
    assert blob.pk != served.artifacts["keras"]["blob_id"]
    with default_storage.open(blob.path, "wb") as fh:  # tampered with on the storage side
        fh.write(b"not the registered model")
    with caplog.at_level("ERROR", logger="apps.serving"):
        ptr = poll_engine.refresh(rm)
    assert ptr.production.number == 1  # the old version keeps answering
    assert (v2.pk, "keras") not in poll_engine.models and "sha256" in poll_engine.load_errors[v2.pk, "keras"][0]
    assert any("refusing to load" in r.message for r in caplog.records)
    plan, res = poll_engine.predict(rm, decoded(1, "defect"))
    assert plan.answer.number == 1 and res[0]["class"] == "defect"
    # A fresh process with nothing to fall back on answers 503 rather than load it.
    fresh = Engine(poll=True, writer=LogWriter(background=False))
    with pytest.raises(ModelUnavailable, match="sha256"):
        fresh.predict(rm, decoded(1, "defect"))
    fresh.stop()


def test_models_load_with_keras_safe_mode(project, served, poll_engine, monkeypatch):
    import keras

    seen = []
    real = keras.models.load_model
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    poll_engine.refresh(served.registered_model)
    assert seen and all(kw.get("safe_mode") is True for kw in seen)


def test_a_lone_client_does_not_wait_for_neighbours(project, served, poll_engine, settings):
    """Batching waits for neighbours only when images arrive more often than max_wait: one client at
    a time is answered at once, not after max_wait (a generous 400 ms here, to make the wait visible)."""
    import time

    settings.SERVING_MAX_WAIT_MS = 400.0
    poll_engine.refresh(served.registered_model)
    took = []
    for i in range(4):
        started = time.perf_counter()
        poll_engine.predict(served.registered_model, decoded(i, "good"))
        took.append(time.perf_counter() - started)
        time.sleep(0.45)  # slower than max_wait: no neighbour is expected
    b = poll_engine.pointers[served.registered_model_id].production.batcher
    assert b.arrival_gap > 0.4 and b.batch_sizes == [1, 1, 1, 1]
    assert max(took[1:]) < 0.3, took  # not one of them idled out the 400 ms
