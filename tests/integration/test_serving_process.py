"""The real ``manage.py serve`` process on a free port, with a tiny model really trained here on
screw photographs: it answers predictions over HTTP with a project token, writes the prediction
log itself, and swaps to a newly approved version while a client keeps calling, dropping nothing."""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from apps.registry.models import ModelVersion
from apps.serving.models import PredictionLog
from apps.serving.services import project_token_create
from tests.integration.conftest import database_url, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_tiny(paths, labels, classes, workdir, seed):
    """A real fit: tiny CNN, 32x32 grayscale, two epochs on a handful of screws."""
    from apps.training.ml.config import TrainConfig
    from apps.training.ml.run import SplitData, train_and_evaluate

    cfg = TrainConfig(
        architecture="tiny_cnn",
        image_size=32,
        channels=1,
        augmentation="none",
        epochs=2,
        batch_size=8,
        early_stopping=False,
        reduce_lr_on_plateau=False,
        seed=seed,
    )
    idx = [classes.index(lab) for lab in labels]
    split = SplitData([str(p) for p in paths], idx)
    result = train_and_evaluate(
        cfg, {"train": split, "val": split, "test": split}, classes, workdir=str(workdir), log=lambda *a, **k: None
    )
    return Path(result.artifacts["keras"]).read_bytes(), cfg


def register_trained(project, dv, model_bytes, cfg, user, stage):
    from apps.core.storage import blob_put
    from apps.registry.services import model_version_register
    from apps.training.models import Artifact, TrainingRun

    run = TrainingRun.objects.create(
        project=project,
        dataset_version=dv,
        status="succeeded",
        created_by=user,
        name="tiny screws",
        config=cfg.to_dict(),
        test_metrics={"accuracy": 0.5, "n": 4},
        epochs_total=cfg.epochs,
        epochs_run=cfg.epochs,
    )
    blob = blob_put(model_bytes, ext="keras", content_type="application/octet-stream")
    Artifact.objects.create(
        run=run, kind="keras", blob=blob, sha256=blob.sha256, size=blob.size, filename="model.keras"
    )
    v = model_version_register(run=run, registered_model_name="screws", user=user)
    # Promotion itself (gate, approvals) is tested in tests/registry; here the stage is what matters.
    if stage == "production":
        ModelVersion.objects.filter(registered_model=v.registered_model, stage="production").update(stage="archived")
    ModelVersion.objects.filter(pk=v.pk).update(stage=stage)
    return v


@pytest.fixture
def serve_process(tmp_path):
    procs = []

    def start(**env):
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--poll", "0.5"],
            cwd=ROOT,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "DATABASE_URL": database_url(),
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "PORTAL_ENV": "test",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "SERVING_LOG_FLUSH_MS": "100",
                "PYTHONUNBUFFERED": "1",
                **env,
            },
        )
        proc.port, proc.log = port, log
        procs.append(proc)

        def ready():
            if proc.poll() is not None:
                raise AssertionError("serve exited:\n" + log.read_text())
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False

        wait_for(ready, timeout=120, what="the serving process to load its model")
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def multipart(images):
    boundary = uuid.uuid4().hex
    body = b""
    for name, data in images:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(port, slug, key, images, timeout=60, model="screws"):
    body, content_type = multipart(images)
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/projects/{slug}/serving/models/{model}/predict/",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


def test_the_serving_process_predicts_logs_and_swaps(project, people, screws, serve_process, tmp_path):
    from tests.registry.conftest import tiny_dataset_version

    root, rows = screws
    picked = [r for r in rows if r["label"] == "good"][:6] + [r for r in rows if r["label"] != "good"][:6]
    paths, labels = [root / r["path"] for r in picked], [r["label"] for r in picked]
    classes = sorted(set(labels))
    dv = tiny_dataset_version(project)
    v1_bytes, cfg = train_tiny(paths, labels, classes, tmp_path / "v1", seed=1)
    v1 = register_trained(project, dv, v1_bytes, cfg, people["ds"], "production")
    ModelVersion.objects.filter(pk=v1.pk).update(classes=classes)
    _, key = project_token_create(project=project, user=people["ds"], name="itest")

    proc = serve_process()
    images = [(p.name, p.read_bytes()) for p in paths[:3]] + [(paths[-1].name, paths[-1].read_bytes())]
    status, body, headers = post(proc.port, project.slug, key, images)
    assert status == 200, body
    assert body["model_version"] == 1 and len(body["predictions"]) == 4
    assert all(p["class"] in classes and set(p["probabilities"]) == set(classes) for p in body["predictions"])
    assert headers["X-Request-ID"] == body["request_id"]
    status, body, _ = post(proc.port, project.slug, key, [("notes.png", b"not an image")])
    assert status == 400 and body["errors"][0]["file"] == "notes.png"
    status, body, _ = post(proc.port, project.slug, "mlpp_wrong", images[:1])
    assert status == 401
    # The serving process writes the log itself (batched, off the request path).
    wait_for(lambda: PredictionLog.objects.filter(model_version=v1).count() == 4, timeout=30, what="4 log rows")

    # One keep-alive connection, 20 predictions: the client sees each within a few ms of the server's own
    # figure (Nagle + delayed ACK used to add ~40 ms per response on a reused connection).
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=60)
    path = f"/api/v1/projects/{project.slug}/serving/models/screws/predict/"
    gaps = []
    for _ in range(20):
        body, content_type = multipart(images[:1])
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {key}", "Content-Type": content_type})
        r = conn.getresponse()
        answer = json.loads(r.read())
        assert r.status == 200 and r.getheader("Connection", "").lower() != "close", answer
        gaps.append((time.perf_counter() - started) * 1000 - answer["latency_ms"])
    conn.close()
    assert statistics.median(gaps) < 15, gaps
    wait_for(lambda: PredictionLog.objects.filter(model_version=v1).count() == 24, timeout=30, what="24 log rows")
    row = PredictionLog.objects.filter(model_version=v1).first()
    assert row.input_stats["width"] == 1024 and row.input_stats["brightness"] > 0

    # Hot swap: a new version approved while a client keeps calling.
    v2_bytes, _ = train_tiny(paths, labels, classes, tmp_path / "v2", seed=2)
    assert v2_bytes != v1_bytes
    answers, failures, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            s, b, _ = post(proc.port, project.slug, key, images[:1])
            (answers if s == 200 else failures).append(b.get("model_version") if s == 200 else (s, b))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(answers) >= 5, timeout=60, what="requests before the swap")
    v2 = register_trained(project, dv, v2_bytes, cfg, people["ds"], "production")
    ModelVersion.objects.filter(pk=v2.pk).update(classes=classes)
    wait_for(lambda: answers.count(2) >= 5, timeout=120, what="answers from v2")
    stop.set()
    for t in threads:
        t.join(60)
    assert not failures, failures[:3]
    assert set(answers) == {1, 2} and answers[-1] == 2

    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 0
    out = proc.log.read_text()
    assert "predictions logged" in out and "now answers from v2" in out
    n = PredictionLog.objects.filter(registered_model=v1.registered_model).count()
    assert n == 24 + len(answers)  # every answered prediction was logged, the last ones at shutdown
