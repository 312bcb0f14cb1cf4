"""A version as a bundle: the zip holds the model, its card, serve.py (bundle_runtime), requirements
and a Dockerfile; the model loads from it and predicts, over WSGI too."""

import importlib.util
import io
import json
import zipfile

import numpy as np
import pytest

from apps.registry.bundle import bundle_bytes

from .conftest import png

pytestmark = pytest.mark.django_db


def _serve_module(path):
    spec = importlib.util.spec_from_file_location("bundle_serve", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bundle_builds_and_serves_its_model(dv, good_run, register, tmp_path):
    v = register(good_run)
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(v))) as zf:
        assert sorted(zf.namelist()) == [
            "Dockerfile",
            "MODEL_CARD.md",
            "README.md",
            "model.json",
            "model.keras",
            "model_card.json",
            "portal_layers.py",
            "requirements.txt",
            "serve.py",
        ]
        zf.extractall(tmp_path)
    assert "serve.py" in (tmp_path / "Dockerfile").read_text()
    assert "tensorflow-cpu==" in (tmp_path / "requirements.txt").read_text()
    assert json.loads((tmp_path / "model_card.json").read_text())["registry"]["version"] == 1
    serve = _serve_module(tmp_path / "serve.py")
    predictor = serve.Predictor.from_files(tmp_path / "model.keras", tmp_path / "model.json")
    assert predictor.predict(png(3, "defect"))["class"] == "defect"
    assert predictor.predict(png(4, "good"))["class"] == "good"
    # The WSGI app answers /predict with the same result.
    app = serve.wsgi_app(predictor)
    data, status = png(5, "defect"), []
    body = b"".join(
        app(
            {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/predict",
                "CONTENT_LENGTH": str(len(data)),
                "wsgi.input": io.BytesIO(data),
            },
            lambda s, h: status.append(s),
        )
    )
    assert status == ["200 OK"] and json.loads(body)["class"] == "defect"
    body = b"".join(
        app(
            {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/predict",
                "CONTENT_LENGTH": "5",
                "wsgi.input": io.BytesIO(b"nope!"),
            },
            lambda s, h: status.append(s),
        )
    )
    assert status[-1] == "400 Bad Request" and "cannot read the image" in json.loads(body)["error"]


def test_bundle_runtime_refuses_a_changed_model(dv, good_run, register, tmp_path):
    v = register(good_run)
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(v))) as zf:
        zf.extractall(tmp_path)
    (tmp_path / "model.keras").write_bytes((tmp_path / "model.keras").read_bytes() + b"x")
    serve = _serve_module(tmp_path / "serve.py")
    with pytest.raises(serve.IntegrityError, match="refusing to load"):
        serve.Predictor.from_files(tmp_path / "model.keras", tmp_path / "model.json")


def test_runtime_decodes_exactly_like_training():
    from apps.registry import bundle_runtime
    from apps.training.ml.data import decode_resize

    data = png(7, "good")
    a = bundle_runtime.decode_resize(data, image_size=24, channels=1).numpy()
    b = decode_resize(data, image_size=24, channels=1).numpy()
    assert np.array_equal(a, b)


def test_runtime_has_no_django_import():
    import ast
    from pathlib import Path

    from apps.registry import bundle_runtime

    tree = ast.parse(Path(bundle_runtime.__file__).read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m.split(".")[0] in ("django", "apps", "rest_framework")}, modules


def test_the_dockerfiles_name_only_files_the_bundle_holds(dv, good_run, register):
    """Nothing has built the images here (no Docker engine): each Dockerfile's COPY and CMD are checked
    against the zip (the TensorFlow one, and the ONNX Runtime one once the ONNX export exists)."""
    import shlex

    from apps.registry.exports import export_execute
    from apps.registry.models import ExportRun

    v = register(good_run)
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(v))) as zf:
        assert "Dockerfile.onnx" not in zf.namelist()  # no ONNX export yet
    assert export_execute(export_id=ExportRun.objects.get(version=v, kind="onnx").pk).status == "succeeded"
    v.refresh_from_db()
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(v))) as zf:
        names = set(zf.namelist())
        dockerfiles = {n: zf.read(n).decode() for n in ("Dockerfile", "Dockerfile.onnx")}
        assert "onnxruntime==" in zf.read("requirements-onnx.txt").decode()
        assert "tensorflow" not in zf.read("requirements-onnx.txt").decode()
    for name, dockerfile in dockerfiles.items():
        copied, cmd = set(), None
        for line in dockerfile.splitlines():
            words = line.split()
            if words[:1] == ["COPY"]:
                copied.update(w for w in words[1:-1])  # the last word is the destination
            if words[:1] == ["CMD"]:
                cmd = json.loads(line[3:].strip())
        assert copied and copied <= names, (name, copied - names)
        assert cmd is not None and cmd[1] in names and cmd[1] in copied
        for flag in ("--model", "--spec"):
            assert cmd[cmd.index(flag) + 1] in copied
        assert shlex.split(dockerfile.splitlines()[0])[0] == "FROM"
