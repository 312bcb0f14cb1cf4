"""Serving on ONNX Runtime: a route setting runs the versions' ONNX exports instead of Keras, answers
like Keras, refuses to switch while an export is missing, and is shown on the serving page."""

import pytest
from django.core.exceptions import ValidationError

from apps.registry.exports import export_execute
from apps.registry.models import ExportRun
from apps.serving import services
from apps.serving.engine import Engine
from apps.serving.inputs import RawInput, decode_input
from apps.serving.logwriter import LogWriter
from tests.training.conftest import tiny_png

pytestmark = pytest.mark.django_db


def decoded(i, label):
    return [decode_input(RawInput(0, f"{i}.png", tiny_png(i, label)))]


def test_a_route_on_onnx_runtime_answers_like_keras(project, served, staging, people, client_for, api):
    rm = served.registered_model
    with pytest.raises(ValidationError, match="has no ONNX export"):
        services.serving_route_set(registered_model=rm, user=people["ds"], mode="off", engine="onnx")
    assert export_execute(export_id=ExportRun.objects.get(version=served, kind="onnx").pk).status == "succeeded"
    served.refresh_from_db()
    keras_engine = Engine(poll=True, writer=LogWriter(background=False))
    inputs = [decoded(i, "defect" if i % 2 else "good") for i in range(6)]
    try:
        want = [keras_engine.predict(rm, x)[1][0] for x in inputs]
        assert keras_engine.pointers[rm.pk].production.engine == "keras"
    finally:
        keras_engine.stop()
    r = api(people["manager"]).put(
        f"/api/v1/projects/{project.slug}/serving/models/{rm.name}/route/",
        {"mode": "off", "engine": "onnx"},
        format="json",
    )
    assert r.status_code == 200 and r.json()["engine"] == "onnx"
    onnx_engine = Engine(poll=True, writer=LogWriter(background=False))
    try:
        got = [onnx_engine.predict(rm, x)[1][0] for x in inputs]
        loaded = onnx_engine.pointers[rm.pk].production
        assert loaded.engine == "onnx" and loaded.sha256 == served.artifacts["onnx"]["sha256"]
        v2 = staging("good")  # a version asked for by number (pinned) runs on the route's engine too
        assert export_execute(export_id=ExportRun.objects.get(version=v2, kind="onnx").pk).status == "succeeded"
        pinned, answer = onnx_engine.predict(rm, inputs[0], ref=str(v2.number))
        assert pinned.route == "pinned" and pinned.answer.engine == "onnx" and pinned.answer.number == v2.number
        assert answer[0]["class"] == got[0]["class"]
    finally:
        onnx_engine.stop()
    for a, b in zip(got, want):
        assert a["class"] == b["class"]
        for c in served.classes:
            assert abs(a["probabilities"][c] - b["probabilities"][c]) < 1e-4
    page = client_for(people["labeler"]).get(f"/p/{project.slug}/serving/").content.decode()
    assert "Engine: <strong>ONNX Runtime" in page
    r = api(people["manager"]).put(
        f"/api/v1/projects/{project.slug}/serving/models/{rm.name}/route/",
        {"mode": "off", "engine": "tensorrt"},
        format="json",
    )
    assert r.status_code == 400
