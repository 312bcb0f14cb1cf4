"""Model files are data, never code: every Keras load uses safe_mode=True, so a .keras file carrying
a Lambda layer (pickled Python bytecode) is refused before any of it runs; nothing in the apps
unpickles user files."""

import io
import os
import re
import tempfile
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory):
    """A real .keras file whose Lambda layer writes a marker file when its code runs."""
    import keras

    marker = tmp_path_factory.mktemp("marker") / "code-ran"
    path = str(marker)

    def touch_and_pass(x, _p=path):
        open(_p, "w").close()  # would run if the Lambda were ever deserialized and called
        return x

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Lambda(touch_and_pass)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "evil.keras")
        model.save(f)
        data = open(f, "rb").read()
    if marker.exists():
        marker.unlink()  # building the model ran it once, here, on purpose
    return data, marker


def test_fine_tune_upload_with_a_lambda_layer_is_refused(lambda_model):
    from apps.training.services import base_model_store

    data, marker = lambda_model
    upload = SimpleUploadedFile("evil.keras", data)
    with pytest.raises(ValidationError) as exc:
        base_model_store(upload, config={"image_size": 32, "channels": 1})
    assert "evil.keras" in str(exc.value) and "loads safely" in str(exc.value)
    assert not marker.exists()


@pytest.mark.django_db
def test_fine_tune_upload_over_the_api_is_a_clear_400(lambda_model, api, people, project):
    from tests.registry.conftest import tiny_dataset_version

    data, marker = lambda_model
    dv = tiny_dataset_version(project)
    f = SimpleUploadedFile("evil.keras", data)
    r = api(people["ds"]).post(
        reverse("api-training-runs", args=[project.slug]),
        {
            "dataset_version": dv.number,
            "base_model": f,
            "config": '{"architecture": "finetune", "image_size": 32, "channels": 1, "epochs": 1}',
        },
        format="multipart",
    )
    assert r.status_code == 400, r.content
    assert "evil.keras" in r.json()["base_model"][0]
    assert not marker.exists()


def test_bundle_runtime_and_drift_refuse_a_lambda_model(lambda_model):
    from apps.monitoring.embedder import embed_images
    from apps.registry.bundle_runtime import load_model_bytes, sha256_hex

    data, marker = lambda_model
    with pytest.raises(Exception, match="(?i)lambda|safe_mode|unsafe"):
        load_model_bytes(data, sha256_hex(data))
    with pytest.raises(Exception, match="(?i)lambda|safe_mode|unsafe"):
        embed_images(data, [io.BytesIO().getvalue()], image_size=32, channels=1)
    assert not marker.exists()


def test_every_model_load_in_the_code_uses_safe_mode():
    loads, unsafe = 0, []
    for path in (ROOT / "apps").rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"load_model\(", text):
            line_end = text.find(")", m.end())
            call = text[m.start() : text.find("\n", line_end)]
            if "def load_model" in text[max(0, m.start() - 4) : m.start() + 12]:
                continue
            loads += 1
            if "safe_mode=True" not in call:
                unsafe.append(f"{path.relative_to(ROOT)}: {call}")
        for pattern in (
            r"\bpickle\.loads?\(",
            r"allow_pickle\s*=\s*True",
            r"\bjoblib\.load\(",
            r"torch\.load\(",
            r"\bdill\.",
            r"\bcloudpickle\.",
            r"yaml\.load\((?![^)]*SafeLoader)",
            r"yaml\.unsafe_load",
            r"tf\.saved_model\.load\(",
            r"\bmarshal\.loads\(",
        ):
            for hit in re.finditer(pattern, text):
                unsafe.append(f"{path.relative_to(ROOT)}: {hit.group(0)}")
    assert loads >= 4 and not unsafe, unsafe
