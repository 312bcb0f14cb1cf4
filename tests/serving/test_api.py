"""The prediction API: who may call it, what it accepts, what it answers."""

import base64
import json

import pytest

from apps.accounts.services import api_token_create
from apps.serving import services
from apps.serving.models import PredictionLog, ProjectToken
from tests.factories import png_bytes
from tests.training.conftest import tiny_png

from .conftest import predict_url

pytestmark = pytest.mark.django_db


def post_files(client, url, *files, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"image": [SimpleUploadedFile(name, data, content_type="image/png") for name, data in files]}
    return client.post(url, data, **extra)


def b64(data):
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("who", ["pm", "ds", "manager"])
def test_members_with_a_role_get_class_probabilities_version_and_request_id(project, people, served, engine, api, who):
    r = post_files(api(people[who]), predict_url(project), ("bright.png", tiny_png(1, "defect")))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["class"] == "defect" and body["model_version"] == served.number == 1 and body["route"] == "production"
    assert set(body["probabilities"]) == {"defect", "good"} and abs(sum(body["probabilities"].values()) - 1) < 1e-6
    assert body["confidence"] == max(body["probabilities"].values())
    assert body["request_id"] and r["X-Request-ID"] == body["request_id"]
    assert body["predictions"][0]["name"] == "bright.png"


@pytest.mark.parametrize("who", ["labeler", "reviewer"])
def test_members_without_the_role_get_403(project, people, served, engine, api, who):
    r = post_files(api(people[who]), predict_url(project), ("a.png", tiny_png(1, "defect")))
    assert r.status_code == 403 and "role" in r.json()["detail"]
    assert engine.models == {}  # nothing was loaded for them


def test_outsider_gets_404_and_anonymous_401(project, people, served, engine, api):
    assert (
        post_files(api(people["outsider"]), predict_url(project), ("a.png", tiny_png(1, "defect"))).status_code == 404
    )
    r = post_files(api(), predict_url(project), ("a.png", tiny_png(1, "defect")))
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")


def test_a_batch_as_multipart_and_as_base64_json(project, people, served, engine, api):
    imgs = [tiny_png(i, ("good", "defect")[i % 2]) for i in range(6)]
    r = post_files(api(people["ds"]), predict_url(project), *[(f"{i}.png", d) for i, d in enumerate(imgs)])
    assert r.status_code == 200
    assert [p["class"] for p in r.json()["predictions"]] == ["good", "defect"] * 3
    assert "class" not in r.json()  # a batch answers per image only
    body = {"images": [b64(imgs[0]), {"name": "second.png", "data": "data:image/png;base64," + b64(imgs[1])}]}
    r = api(people["ds"]).post(predict_url(project), body, format="json")
    assert r.status_code == 200, r.content
    assert [(p["name"], p["class"]) for p in r.json()["predictions"]] == [
        ("images[0]", "good"),
        ("second.png", "defect"),
    ]
    r = api(people["ds"]).post(predict_url(project), {"image": b64(imgs[1])}, format="json")
    assert r.json()["class"] == "defect"


def test_model_by_id_and_version_by_number_stage_or_alias(project, people, served, engine, api, staging):
    from apps.registry.services import model_alias_set

    cand = staging("bad")
    model_alias_set(registered_model=cand.registered_model, name="challenger", version=cand, user=people["ds"])
    c, img = api(people["ds"]), [("a.png", tiny_png(1, "defect"))]
    assert post_files(c, predict_url(project, served.registered_model_id), *img).json()["model_version"] == 1
    for ref in ("2", "staging", "challenger"):
        r = post_files(c, predict_url(project) + f"?version={ref}", *img)
        assert r.status_code == 200 and r.json()["model_version"] == 2 and r.json()["route"] == "pinned"
        assert r.json()["class"] == "good"  # the bad model says the opposite
    r = post_files(c, predict_url(project) + "?version=champion", *img)
    assert r.status_code == 404 and "champion" in r.json()["detail"]
    r = post_files(c, predict_url(project, "nosuch"), *img)
    assert r.status_code == 404 and "nosuch" in r.json()["detail"]


def test_no_production_version_is_a_clear_503(project, people, dv, good_run, register, engine, api):
    register(good_run)
    r = post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect")))
    assert r.status_code == 503 and "no production version" in r.json()["detail"]


# Tokens -------------------------------------------------------------------------------------------------


def bearer(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_project_token_scopes(project, people, served, engine, client):
    _, predict_key = services.project_token_create(project=project, user=people["ds"], name="line 3")
    _, read_key = services.project_token_create(project=project, user=people["ds"], name="dash", scopes=["read"])
    img = ("a.png", tiny_png(1, "defect"))
    r = post_files(client, predict_url(project), img, **bearer(predict_key))
    assert r.status_code == 200 and r.json()["class"] == "defect"
    r = post_files(client, predict_url(project), img, **bearer(read_key))
    assert r.status_code == 403 and "predict" in r.json()["detail"]
    assert client.get(f"/api/v1/projects/{project.slug}/serving/predictions/", **bearer(read_key)).status_code == 200
    assert client.get(f"/api/v1/projects/{project.slug}/serving/predictions/", **bearer(predict_key)).status_code == 403
    # Project tokens never manage tokens or routes.
    assert client.get(f"/api/v1/projects/{project.slug}/serving/tokens/", **bearer(read_key)).status_code == 403


def test_token_of_another_project_is_404_and_revoked_or_unknown_is_401(project, people, served, engine, client):
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    _, other_key = services.project_token_create(project=other, user=None, name="elsewhere")
    img = ("a.png", tiny_png(1, "defect"))
    assert post_files(client, predict_url(project), img, **bearer(other_key)).status_code == 404
    token, key = services.project_token_create(project=project, user=people["ds"], name="soon gone")
    assert post_files(client, predict_url(project), img, **bearer(key)).status_code == 200
    services.project_token_revoke(token=token, user=people["manager"])
    r = post_files(client, predict_url(project), img, **bearer(key))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert post_files(client, predict_url(project), img, **bearer("mlpp_not-a-key")).status_code == 401


def test_only_the_hash_of_a_token_is_stored(project, people):
    token, key = services.project_token_create(project=project, user=people["ds"], name="x")
    row = ProjectToken.objects.get(pk=token.pk)
    assert key.startswith("mlpp_") and key not in json.dumps([row.key_hash, row.key_prefix, row.name])
    import hashlib

    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()


def test_personal_tokens_need_the_predict_scope(project, people, served, engine, client):
    _, rw = api_token_create(user=people["ds"], name="rw", scopes=["read", "write"])
    _, pr = api_token_create(user=people["ds"], name="p", scopes=["predict"], project=project)
    _, lab = api_token_create(user=people["labeler"], name="p", scopes=["predict"])
    img = ("a.png", tiny_png(1, "defect"))
    assert post_files(client, predict_url(project), img, **bearer(rw)).status_code == 403
    assert post_files(client, predict_url(project), img, **bearer(pr)).status_code == 200
    assert post_files(client, predict_url(project), img, **bearer(lab)).status_code == 403  # the scope adds no role


def test_rate_limit_per_token_answers_429(project, people, served, engine, client, settings):
    from django.core.cache import cache

    cache.clear()
    _, key = services.project_token_create(project=project, user=people["ds"], name="slow", rate_per_minute=2)
    _, other = services.project_token_create(project=project, user=people["ds"], name="other", rate_per_minute=2)
    img = ("a.png", tiny_png(1, "defect"))
    codes = [post_files(client, predict_url(project), img, **bearer(key)).status_code for _ in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429
    r = post_files(client, predict_url(project), img, **bearer(key))
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1
    assert post_files(client, predict_url(project), img, **bearer(other)).status_code == 200  # per token
    settings.SERVING_RATE_PER_MINUTE = 1
    cache.clear()
    c = api_client_for(people["pm"])
    assert [post_files(c, predict_url(project), img).status_code for _ in range(2)] == [200, 429]  # per user too


def api_client_for(user):
    from rest_framework.test import APIClient

    c = APIClient()
    c.force_authenticate(user)
    return c


# Bad input ------------------------------------------------------------------------------------------------


def bmp_bytes():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="GIF")
    return buf.getvalue()


@pytest.mark.parametrize(
    "name,data,status,words",
    [
        ("notes.png", b"this is text, not a picture", 400, "Not an image"),
        ("cut.png", png_bytes(size=(64, 64))[:200], 400, "truncated or corrupt"),
        ("empty.png", b"", 400, "empty"),
        ("anim.gif", None, 400, "Format GIF is not accepted"),
    ],
)
def test_bad_files_get_4xx_naming_the_file_and_never_reach_the_model(
    project, people, served, engine, api, name, data, status, words
):
    data = bmp_bytes() if data is None else data
    before = {vid: m.batcher.images for vid, m in engine.models.items()}
    r = post_files(api(people["ds"]), predict_url(project), ("good.png", tiny_png(0, "good")), (name, data))
    assert r.status_code == status, r.content
    body = r.json()
    assert body["errors"][0]["file"] == name and words in body["errors"][0]["error"] and name in body["detail"]
    assert {vid: m.batcher.images for vid, m in engine.models.items()} == before  # not even the good one went
    engine.writer.flush()
    assert not PredictionLog.objects.exists()


def test_size_and_pixel_limits(project, people, served, engine, api, settings):
    settings.DATASET_MAX_FILE_BYTES = 500
    big = png_bytes(size=(64, 64), seed=3)
    assert len(big) > 500
    r = post_files(api(people["ds"]), predict_url(project), ("big.png", big))
    assert r.status_code == 413 and "limit" in r.json()["errors"][0]["error"]
    settings.DATASET_MAX_FILE_BYTES = 50 * 1024 * 1024
    settings.DATASET_MAX_PIXELS = 1000
    r = post_files(api(people["ds"]), predict_url(project), ("wide.png", png_bytes(size=(64, 64))))
    assert r.status_code == 400 and "pixels" in r.json()["errors"][0]["error"]


def test_bad_json_bodies_name_the_field(project, people, served, engine, api, settings):
    c = api(people["ds"])
    r = c.post(predict_url(project), {"images": ["%%%not base64"]}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "images[0]" and "base64" in r.json()["detail"]
    r = c.post(predict_url(project), {"nothing": 1}, format="json")
    assert r.status_code == 400 and "No image" in r.json()["detail"]
    r = c.post(predict_url(project), {"images": "abc"}, format="json")
    assert r.status_code == 400 and "list" in r.json()["detail"]
    settings.SERVING_MAX_IMAGES = 2
    r = c.post(predict_url(project), {"images": [b64(tiny_png(i, "good")) for i in range(3)]}, format="json")
    assert r.status_code == 400 and "at most 2" in r.json()["detail"]


def test_the_served_input_is_resized_exactly_as_training_resized(screws):
    """Pillow decoding + the shared resize gives the very tensor the training pipeline makes."""
    import numpy as np

    from apps.serving.inputs import RawInput, decode_input
    from apps.training.ml.data import decode_resize

    root, rows = screws
    data = (root / rows[0]["path"]).read_bytes()
    d = decode_input(RawInput(0, "s.png", data))
    served = d.array(image_size=64, channels=1)
    trained = decode_resize(data, image_size=64, channels=1).numpy()
    assert served.shape == trained.shape == (64, 64, 1)
    assert np.abs(served - trained).max() < 1e-3


def test_input_statistics_match_the_profile_definitions(screws):
    """Serving measures a sample of the full-resolution pixels: within 3 % of the profile's values."""
    from apps.profiling import imagestats
    from apps.serving.inputs import RawInput, decode_input

    root, rows = screws
    for row in rows[::80]:
        data = (root / row["path"]).read_bytes()
        served = decode_input(RawInput(0, "s.png", data)).stats
        profiled = imagestats.stats_from_bytes(data)
        for k in ("width", "height", "bytes", "format", "mode"):
            assert served[k] == profiled[k]
        for k in ("brightness", "contrast", "sharpness", "entropy"):
            assert abs(served[k] - profiled[k]) <= 0.03 * abs(profiled[k]) + 1e-6, (k, served[k], profiled[k])


def test_openapi_describes_the_predict_endpoint(client, people):
    client.force_login(people["ds"])  # the schema is for signed-in users
    r = client.get("/api/schema/?format=json")
    paths = json.loads(r.content)["paths"]
    op = paths["/api/v1/projects/{project_slug}/serving/models/{model}/predict/"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"] and "application/json" in op["requestBody"]["content"]
    assert "200" in op["responses"] and "429" in op["responses"]


def test_one_image_as_the_request_body(project, people, served, engine, api):
    c = api(people["ds"])
    r = c.post(predict_url(project), data=tiny_png(1, "defect"), content_type="image/png", HTTP_X_FILENAME="cam1.png")
    assert r.status_code == 200 and r.json()["class"] == "defect" and r.json()["predictions"][0]["name"] == "cam1.png"
    r = c.post(predict_url(project), data=b"garbage", content_type="application/octet-stream")
    assert r.status_code == 400 and "Not an image" in r.json()["detail"]
