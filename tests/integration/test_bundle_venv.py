"""A bundle serves itself: a model trained on real screw photographs is registered and exported to
ONNX; its bundle is unpacked into an empty folder, a fresh venv installs only what the bundle lists
(requirements-onnx.txt: ONNX Runtime, NumPy, Pillow; no TensorFlow), and ``python -m serve``
answers /predict like the portal's own serving (same classes; probabilities within 0.02)."""

import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest

from apps.registry import services as registry
from apps.registry.artifacts import artifact_bytes
from apps.registry.bundle import bundle_bytes
from apps.registry.bundle_runtime import Predictor, load_model_bytes
from apps.registry.exports import export_execute
from apps.registry.models import ExportRun
from apps.training import services
from tests.factories import make_item, make_version, mark_profiled

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
TOLERANCE = 0.02  # Pillow's and TensorFlow's antialiased resize differ by a fraction of a grey level


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unpacked_bundle_serves_on_onnx_runtime_in_a_fresh_venv(project, people, screws, tmp_path):
    folder, rows = screws
    picked = [r for r in rows if r["label"] == "good"][:8] + [r for r in rows if r["label"] == "defect"][:8]
    entries = []
    for i, r in enumerate(picked):
        split = (["train"] * 4 + ["val"] * 2 + ["test"] * 2)[i % 8]
        entries.append((make_item(project, data=(folder / r["path"]).read_bytes(), name=r["path"]), split, r["label"]))
    version = make_version(project, entries)
    mark_profiled(version)
    run = services.training_run_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        config={
            "architecture": "tiny_cnn",
            "image_size": 64,
            "channels": 1,
            "epochs": 2,
            "batch_size": 4,
            "early_stopping": False,
        },
    )
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    mv = registry.model_version_register(run=run, registered_model_name="screws", user=people["ds"])
    assert export_execute(export_id=ExportRun.objects.get(version=mv, kind="onnx").pk).status == "succeeded"
    mv.refresh_from_db()

    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(mv))) as zf:
        zf.extractall(bundle)
    assert (bundle / "model.onnx").exists() and (bundle / "Dockerfile.onnx").exists()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(bundle / "requirements-onnx.txt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    port = _free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    server = subprocess.Popen(
        [
            str(venv / "bin" / "python"),
            "-m",
            "serve",
            "--model",
            "model.onnx",
            "--spec",
            "model.json",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=bundle,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.load(r) == {"status": "ok"}
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the bundle's server did not start"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metadata", timeout=5) as r:
            meta = json.load(r)
        assert meta["classes"] == mv.classes and meta["engine"].startswith("onnxruntime")
        portal = Predictor(
            load_model_bytes(artifact_bytes(mv, "keras"), mv.artifacts["keras"]["sha256"]),
            classes=mv.classes,
            image_size=64,
            channels=1,
        )  # what the serving process runs
        for item, split, _ in entries:
            if split != "test":
                continue
            data = (folder / item.original_name).read_bytes()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=data, method="POST")
            with urllib.request.urlopen(req, timeout=30) as r:
                answer = json.load(r)
            want = portal.predict(data)
            # the fields of the portal's serving answer for one image
            assert {
                "request_id",
                "model",
                "model_version",
                "classes",
                "latency_ms",
                "predictions",
                "class",
                "confidence",
                "probabilities",
            } <= set(answer)
            assert answer["model"] == "screws" and answer["model_version"] == mv.number
            assert answer["predictions"][0]["class"] == answer["class"] == want["class"]
            for c in mv.classes:
                assert abs(answer["probabilities"][c] - want["probabilities"][c]) < TOLERANCE, (answer, want)
    finally:
        server.terminate()
        server.wait(10)
