"""A version as a self-contained bundle (zip): the model, its model card, and a Dockerfile plus
requirements that serve it with the portal's serving runtime (bundle_runtime.py, shipped as serve.py)."""

import io
import json
import zipfile
from pathlib import Path

from .artifacts import artifact_bytes
from .card import card_markdown

RUNTIME = Path(__file__).with_name("bundle_runtime.py")
LAYERS = Path(__file__).resolve().parents[1] / "training" / "ml" / "layers.py"
PINNED = ("tensorflow-cpu", "numpy")
PINNED_ONNX = ("onnxruntime", "numpy", "pillow")

DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY model.keras model.json model_card.json serve.py portal_layers.py ./
EXPOSE 8080
# POST image bytes to /predict; GET /healthz, /metadata
CMD ["python", "serve.py", "--model", "model.keras", "--spec", "model.json", "--port", "8080"]
"""


DOCKERFILE_ONNX = """\
FROM python:3.12-slim
WORKDIR /srv
COPY requirements-onnx.txt .
RUN pip install --no-cache-dir -r requirements-onnx.txt
COPY model.onnx model.json model_card.json serve.py ./
EXPOSE 8080
# ONNX Runtime, no TensorFlow. POST image bytes to /predict; GET /healthz, /metadata
CMD ["python", "serve.py", "--model", "model.onnx", "--spec", "model.json", "--port", "8080"]
"""


def _requirements(names=PINNED):
    """The portal's own pins for what the runtime imports (so the bundle runs what was tested)."""
    root = Path(__file__).resolve().parents[2] / "requirements.txt"
    lines = []
    if root.exists():
        for line in root.read_text().splitlines():
            name = line.split("==")[0].strip().lower()
            if name in names:
                lines.append(line.strip())
    return "\n".join(lines or list(names)) + "\n"


def bundle_name(version):
    return f"{version.registered_model.project.slug}-{version.registered_model.name}-v{version.number}.zip".replace(
        " ", "_"
    )


def bundle_bytes(version):
    """The zip's bytes. The model's sha256 is checked as it is read (artifact_bytes) and again by
    serve.py when the container loads it."""
    model = artifact_bytes(version, "keras")
    meta = version.artifacts["keras"]
    try:
        card = json.loads(artifact_bytes(version, "model_card"))
    except Exception:  # noqa: BLE001 - an older run without a stored card: the run's card field stands in
        card = dict(version.run.model_card or {})
    card.setdefault("registry", {}).update(
        {
            "model": version.registered_model.name,
            "version": version.number,
            "stage": version.stage,
            "dataset_version": version.dataset_version.number,
            "run": version.run_id,
            "sha256": meta["sha256"],
        }
    )
    spec = {
        "name": version.registered_model.name,
        "version": version.number,
        "classes": list(version.classes),
        "input_spec": dict(version.input_spec),
        "sha256": meta["sha256"],
        "onnx_sha256": (version.artifacts.get("onnx") or {}).get("sha256", ""),
        "metrics": {k: version.metrics.get(k) for k in ("n", "accuracy", "macro_f1") if k in version.metrics},
    }
    readme = (
        f"# {version.registered_model.name} v{version.number}\n\n"
        "Build and run:\n\n    docker build -t model .\n    docker run -p 8080:8080 model\n"
        "    curl --data-binary @image.png http://localhost:8080/predict\n\n"
        "Without Docker: `pip install -r requirements.txt && python serve.py`.\n"
        "What the model is for, how well it does and where it should not be used: MODEL_CARD.md.\n"
        + (
            "Without TensorFlow (ONNX Runtime): `pip install -r requirements-onnx.txt && "
            "python -m serve --model model.onnx`, or `docker build -f Dockerfile.onnx -t model .`.\n"
            if "onnx" in version.artifacts
            else ""
        )
        + f"Classes: {', '.join(version.classes)}. Input: {spec['input_spec'].get('image_size')} px square, "
        f"{spec['input_spec'].get('channels')} channel(s), any PNG/JPEG/BMP/GIF (resized as in training).\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.keras", model)
        zf.writestr("model.json", json.dumps(spec, indent=2))
        zf.writestr("model_card.json", json.dumps(card, indent=2, default=str))
        zf.writestr("serve.py", RUNTIME.read_text())
        zf.writestr("portal_layers.py", LAYERS.read_text())
        zf.writestr("requirements.txt", _requirements())
        zf.writestr("Dockerfile", DOCKERFILE)
        zf.writestr("README.md", readme)
        zf.writestr("MODEL_CARD.md", card_markdown(version))
        if "onnx" in version.artifacts:  # the ONNX export succeeded: the bundle can also run without TensorFlow
            zf.writestr("model.onnx", artifact_bytes(version, "onnx"))
            zf.writestr("requirements-onnx.txt", _requirements(PINNED_ONNX))
            zf.writestr("Dockerfile.onnx", DOCKERFILE_ONNX)
    return buf.getvalue()


def bundle_response(version):
    """The bundle as a download (the page and the API serve the same response)."""
    from django.http import HttpResponse

    resp = HttpResponse(bundle_bytes(version), content_type="application/zip")
    resp["Content-Disposition"] = f'attachment; filename="{bundle_name(version)}"'
    return resp
