"""``explain=true``: each prediction also carries a heatmap of where the model looked, through the
API, the serving process's fast path and "Try it"; a model that cannot draw one says why."""

import base64
import io

import pytest
from PIL import Image

from apps.serving import services
from apps.serving.fastpath import FastPredictApp
from tests.training.conftest import tiny_png

from .conftest import predict_url
from .test_api import post_files
from .test_fastpath import call

pytestmark = pytest.mark.django_db


def png_of(uri):
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_the_api_returns_a_heatmap_per_image_only_when_asked(project, people, served, engine, api):
    c = api(people["ds"])
    plain = post_files(c, predict_url(project), ("a.png", tiny_png(1, "defect"))).json()
    assert "heatmap" not in plain["predictions"][0]
    r = post_files(
        c, predict_url(project) + "?explain=true", ("a.png", tiny_png(1, "defect")), ("b.png", tiny_png(2, "good"))
    )
    body = r.json()
    assert r.status_code == 200 and len(body["predictions"]) == 2
    for p in body["predictions"]:
        im = png_of(p["heatmap"])
        assert im.size == (256, 256) and im.mode == "RGB"
    # The same classes and probabilities as without it (the heatmap is drawn beside, not instead).
    assert body["predictions"][0]["probabilities"] == pytest.approx(plain["predictions"][0]["probabilities"])
    r = c.post(
        predict_url(project), {"image": base64.b64encode(tiny_png(3, "good")).decode(), "explain": True}, format="json"
    )
    assert r.status_code == 200 and png_of(r.json()["predictions"][0]["heatmap"])
    assert api(people["labeler"]).post(predict_url(project) + "?explain=1", {}).status_code == 403
    assert api(people["outsider"]).post(predict_url(project) + "?explain=1", {}).status_code == 404


def test_the_fast_path_explains_too(project, people, served, engine):
    _, key = services.project_token_create(project=project, user=people["ds"], name="cam")
    app = FastPredictApp(lambda environ, start: [b""])
    status, body, _ = call(app, predict_url(project), tiny_png(1, "defect"), key=key, query="explain=true")
    assert status == 200 and png_of(body["predictions"][0]["heatmap"]).size == (256, 256)
    status, body, _ = call(app, predict_url(project), tiny_png(1, "defect"), key=key)
    assert status == 200 and "heatmap" not in body["predictions"][0]


def test_try_it_shows_the_heatmap_when_ticked(project, people, served, engine, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = f"/p/{project.slug}/serving/"
    page = client_for(people["pm"]).get(url).content.decode()
    assert 'id="try-explain"' in page
    image = SimpleUploadedFile("bright.png", tiny_png(1, "defect"), content_type="image/png")
    html = (
        client_for(people["pm"])
        .post(url, {"model": served.registered_model_id, "image": image, "explain": "on"})
        .content.decode()
    )
    assert 'class="try-heatmap"' in html and 'src="data:image/png;base64,' in html
    image = SimpleUploadedFile("bright.png", tiny_png(1, "defect"), content_type="image/png")
    html = client_for(people["pm"]).post(url, {"model": served.registered_model_id, "image": image}).content.decode()
    assert 'class="try-heatmap"' not in html


def test_an_onnx_served_model_says_why_it_draws_no_heatmap(project, people, served, engine):
    from apps.serving.engine import ExplainUnavailable
    from apps.serving.inputs import RawInput
    from apps.serving.predict import predict_images

    answer_model = engine.plan(served.registered_model, None).answer
    answer_model.engine = "onnx"  # as if routed to ONNX Runtime
    try:
        with pytest.raises(ExplainUnavailable):
            answer_model.explain([])
        body = predict_images(
            registered_model=served.registered_model, raws=[RawInput(0, "a.png", tiny_png(1, "defect"))], explain=True
        )
        assert "heatmap" not in body["predictions"][0] and "ONNX Runtime" in body["explain"]
    finally:
        answer_model.engine = "keras"
