#!/usr/bin/env python
"""Mixed load for 60 s on loopback: labelers fetching and submitting, viewers on dashboards, clients
calling predict, all at once against the real processes (gunicorn for the portal, ``manage.py serve``
for predictions), on a throwaway database.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/load.py [--quick] [--seconds 60] [--db postgres|sqlite]

Bounded in time (--seconds, 20 with --quick) and in count (--max-requests per client), loopback only.
The database is a fresh PostgreSQL database made for the run and dropped after it (``--db postgres``,
the default where PostgreSQL answers on 127.0.0.1:5432), or a SQLite file in a temp folder.

Printed: per endpoint, the requests, throughput, p50/p95/p99 and the errors (4xx, 5xx, refused).
Reference, in the same run and at the same total concurrency: the portal's ``/healthz`` (the same
gunicorn, the cheapest request it answers). The RESULT figure is the mixed load's total throughput;
the goal is zero 5xx.
"""

import argparse
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _throwaway import session_for  # noqa: E402

from bench._screws import load_manifest  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def postgres_up():
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by = {}

    def add(self, name, ms, status):
        with self.lock:
            d = self.by.setdefault(name, {"ms": [], "4xx": 0, "5xx": 0, "refused": 0})
            if status is None:
                d["refused"] += 1
            else:
                d["ms"].append(ms)
                if 400 <= status < 500:
                    d["4xx"] += 1
                elif status >= 500:
                    d["5xx"] += 1


class Client:
    """One keep-alive HTTP/1.1 connection, as a browser tab or a client library holds."""

    def __init__(self, port, headers):
        self.port, self.headers, self.conn = port, headers, None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    return None, b""


def timed(stats, name, client, method, path, body=None, headers=None):
    t = time.perf_counter()
    status, data = client.request(method, path, body, headers)
    stats.add(name, (time.perf_counter() - t) * 1000, status)
    return status, data


def setup(args, tmp):
    """The portal's data for the run: a project with items in the labeling queue, a finished
    profile and training run, a production model really trained on screws, tokens and sessions."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from PIL import Image

    from apps.accounts.models import ProjectMember, Role
    from apps.accounts.services import api_token_create
    from apps.core.storage import blob_put
    from apps.datasets.models import Item
    from apps.labeling.models import ItemLabel
    from apps.labeling.services import label_class_get_or_create, queue_sync
    from apps.projects.models import Project
    from apps.registry.models import ModelVersion
    from apps.registry.services import model_version_register
    from apps.serving.services import project_token_create
    from apps.training.ml.config import TrainConfig
    from apps.training.ml.run import SplitData, train_and_evaluate
    from apps.training.models import Artifact, TrainingRun
    from tests.factories import make_version, mark_profiled

    User = get_user_model()
    project = Project.objects.create(slug="load", name="Load test")
    people = {}
    for name, role in [("ds", Role.DATA_SCIENTIST), ("viewer", Role.MANAGER)] + [
        (f"labeler{i}", Role.LABELER) for i in range(args.labelers)
    ]:
        u = User.objects.create_user(username=name, password=uuid.uuid4().hex)
        ProjectMember.objects.create(project=project, user=u, role=role)
        people[name] = u
    good = label_class_get_or_create(project=project, name="good")
    defect = label_class_get_or_create(project=project, name="defect")

    # Real screws for the model and the dataset version; many cheap items for the labeling queue.
    rows = load_manifest()
    picked = [r for r in rows if r[1] == "good"][:24] + [r for r in rows if r[1] == "defect"][:24]
    items = []
    for path, label in picked:
        data = Path(path).read_bytes()
        blob = blob_put(data, ext="png", content_type="image/png")
        item = Item.objects.create(
            project=project,
            sha256=blob.sha256,
            blob=blob,
            original_name=Path(path).name,
            width=1024,
            height=1024,
            mode="L",
            format="PNG",
            bytes=len(data),
        )
        ItemLabel.objects.create(item=item, label_class=good if label == "good" else defect)
        items.append((item, label))
    splits = ["train"] * 7 + ["val", "test", "test"]
    dv = make_version(project, [(it, splits[i % len(splits)], lab) for i, (it, lab) in enumerate(items)], seed=1)
    mark_profiled(dv)

    import hashlib
    import io

    buf = io.BytesIO()
    Image.new("L", (64, 64), 180).save(buf, format="PNG")
    small = blob_put(buf.getvalue(), ext="png", content_type="image/png")
    batch = [
        Item(
            project=project,
            sha256=hashlib.sha256(f"load-{i}".encode()).hexdigest(),
            blob=small,
            original_name=f"queued_{i:06d}.png",
            width=64,
            height=64,
            mode="L",
            format="PNG",
            bytes=small.size,
        )
        for i in range(args.items)
    ]
    Item.objects.bulk_create(batch, batch_size=2000)
    queue_sync(project=project)

    cfg = TrainConfig(
        architecture="tiny_cnn",
        image_size=64,
        channels=1,
        augmentation="none",
        epochs=2,
        batch_size=8,
        early_stopping=False,
        reduce_lr_on_plateau=False,
        seed=1,
    )
    classes = ["defect", "good"]
    split = SplitData([p for p, _ in picked], [classes.index(lab) for _, lab in picked])
    result = train_and_evaluate(
        cfg,
        {"train": split, "val": split, "test": split},
        classes,
        workdir=str(tmp / "train"),
        log=lambda *a, **k: None,
    )
    run = TrainingRun.objects.create(
        project=project,
        dataset_version=dv,
        status="succeeded",
        created_by=people["ds"],
        name="load model",
        config=cfg.to_dict(),
        test_metrics=result.metrics,
        epochs_total=cfg.epochs,
        epochs_run=cfg.epochs,
    )
    model_bytes = Path(result.artifacts["keras"]).read_bytes()
    blob = blob_put(model_bytes, ext="keras", content_type="application/octet-stream")
    Artifact.objects.create(
        run=run, kind="keras", blob=blob, sha256=blob.sha256, size=blob.size, filename="model.keras"
    )
    mv = model_version_register(run=run, registered_model_name="screws", user=people["ds"])
    ModelVersion.objects.filter(pk=mv.pk).update(stage="production")  # promotion itself is tested elsewhere

    tokens = {name: api_token_create(user=u, name="load", project=project)[1] for name, u in people.items()}
    predict_key = project_token_create(
        project=project, user=people["ds"], name="load client", scopes=["predict"], rate_per_minute=1_000_000
    )[1]
    images = [Path(p).read_bytes() for p, _ in picked]
    return {
        "tokens": tokens,
        "predict_key": predict_key,
        "session": session_for(people["viewer"]),
        "run": run.pk,
        "images": images,
        "model": "screws",
        "version": dv.number,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="20 s of load instead of 60")
    ap.add_argument("--smoke", action="store_true", help="5 s of load on 500 items, SQLite (< 1 min, CI)")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres" if postgres_up() else "sqlite")
    ap.add_argument("--labelers", type=int, default=4)
    ap.add_argument("--viewers", type=int, default=2)
    ap.add_argument("--predictors", type=int, default=4)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--max-requests", type=int, default=20_000, help="per client, a bound besides time")
    ap.add_argument("--web-workers", type=int, default=2)
    args = ap.parse_args()
    if args.smoke:
        args.items, args.db = 500, "sqlite"
    seconds = args.seconds or (5.0 if args.smoke else 20.0 if args.quick else 60.0)

    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    if not os.environ.get("BENCH_KEEP"):
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    env = {
        "PORTAL_ENV": "dev",
        "DEBUG": "false",
        "PORTAL_VAR_DIR": str(tmp),
        "MEDIA_ROOT": str(tmp / "media"),
        "CELERY_BROKER_URL": f"filesystem://{tmp}/broker",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "ALLOWED_HOSTS": "*",
        "SERVING_LOG_FLUSH_MS": "200",
        "PYTHONUNBUFFERED": "1",
    }
    if args.db == "postgres":
        name = f"mlportal_load_{os.getpid()}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
        atexit.register(
            subprocess.run,
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
        )
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp}/load.sqlite3"
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlportal.settings"
    t0 = time.perf_counter()
    data = setup(args, tmp)
    print(
        f"setup ({args.db}, {args.items:,} queued items, a tiny model trained on 48 screws): "
        f"{time.perf_counter() - t0:.0f} s"
    )

    procs = []

    def start(cmd, port, name):
        log = open(tmp / f"{name}.log", "w")
        p = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(p)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise SystemExit(f"{name} exited:\n" + (tmp / f"{name}.log").read_text()[-3000:])
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/readyz" if name == "serve" else "/healthz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"{name} did not get ready")

    def stop_all():
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    atexit.register(stop_all)
    web, serve = free_port(), free_port()
    py = sys.executable
    start(
        [
            py,
            "-m",
            "gunicorn",
            "mlportal.wsgi",
            "-b",
            f"127.0.0.1:{web}",
            "-k",
            "gthread",
            "--workers",
            str(args.web_workers),
            "--threads",
            "4",
            "--keep-alive",
            "30",
        ],
        web,
        "web",
    )
    start([py, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(serve), "--poll", "5"], serve, "serve")

    stats, stop_at = Stats(), [0.0]
    api = "/api/v1/projects/load/labeling/"

    def labeler(i):
        c = Client(
            web, {"Authorization": f"Bearer {data['tokens'][f'labeler{i}']}", "Content-Type": "application/json"}
        )
        for n in range(args.max_requests):
            if time.monotonic() > stop_at[0]:
                return
            status, body = timed(stats, "labeling: next", c, "POST", api + "queue/next/", json.dumps({"n": 1}))
            if status != 200:
                continue
            got = json.loads(body).get("items") or []
            if not got:
                return
            it = got[0]
            timed(
                stats,
                "labeling: submit",
                c,
                "POST",
                api + f"items/{it['id']}/label/",
                json.dumps({"label_class": "good" if n % 4 else "defect", "expected_revision": it["revision"]}),
            )

    pages = [
        "/p/load/monitoring/",
        "/p/load/",
        f"/p/load/training/runs/{data['run']}/",
        "/p/load/labeling/",
        f"/p/load/data/versions/{data['version']}/",
        "/p/load/registry/",
    ]

    def viewer(i):
        c = Client(web, {"Cookie": f"sessionid={data['session']}"})
        for n in range(args.max_requests):
            if time.monotonic() > stop_at[0]:
                return
            page = pages[(n + i) % len(pages)]
            timed(stats, "page: " + (page.replace("/p/load", "").split("/")[1] or "overview"), c, "GET", page)
            timed(stats, "api: monitoring summary", c, "GET", "/api/v1/projects/load/monitoring/summary/")

    def predictor(i):
        c = Client(serve, {"Authorization": f"Bearer {data['predict_key']}"})
        images = data["images"]
        for n in range(args.max_requests):
            if time.monotonic() > stop_at[0]:
                return
            boundary = uuid.uuid4().hex
            body = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="s.png"\r\n'
                    "Content-Type: image/png\r\n\r\n"
                ).encode()
                + images[(n * 7 + i) % len(images)]
                + f"\r\n--{boundary}--\r\n".encode()
            )
            timed(
                stats,
                "predict",
                c,
                "POST",
                f"/api/v1/projects/load/serving/models/{data['model']}/predict/",
                body,
                {"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )

    def healthz(i):
        c = Client(web, {})
        for _ in range(args.max_requests):
            if time.monotonic() > stop_at[0]:
                return
            timed(ref, "healthz", c, "GET", "/healthz")

    def run(workers, secs):
        stop_at[0] = time.monotonic() + secs
        threads = [threading.Thread(target=fn, args=(i,)) for fn, i in workers]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.perf_counter() - t

    mixed = (
        [(labeler, i) for i in range(args.labelers)]
        + [(viewer, i) for i in range(args.viewers)]
        + [(predictor, i) for i in range(args.predictors)]
    )
    ref = Stats()
    run([(healthz, i) for i in range(len(mixed))], 3)  # warm-up: connections, imports, caches
    ref = Stats()
    ref_secs = run([(healthz, i) for i in range(len(mixed))], min(10.0, seconds / 3))
    elapsed = run(mixed, seconds)

    print(
        f"\n{len(mixed)} clients for {elapsed:.0f} s: {args.labelers} labelers, {args.viewers} viewers, "
        f"{args.predictors} predict clients; gunicorn {args.web_workers}x4 threads + manage.py serve; {args.db}"
    )
    print(
        f"{'endpoint':34}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'4xx':>6}{'5xx':>6}{'refused':>8}"
    )
    total = fivexx = refused = 0
    for name in sorted(stats.by):
        d = stats.by[name]
        n = len(d["ms"])
        total += n
        fivexx += d["5xx"]
        refused += d["refused"]
        print(
            f"{name:34}{n:9d}{n / elapsed:8.1f}{pct(d['ms'], 0.5):9.1f}{pct(d['ms'], 0.95):9.1f}{pct(d['ms'], 0.99):9.1f}"
            f"{d['4xx']:6d}{d['5xx']:6d}{d['refused']:8d}"
        )
    h = ref.by["healthz"]
    ref_rps = len(h["ms"]) / ref_secs
    print(
        f"{'reference: /healthz alone':34}{len(h['ms']):9d}{ref_rps:8.1f}{pct(h['ms'], 0.5):9.1f}"
        f"{pct(h['ms'], 0.95):9.1f}{pct(h['ms'], 0.99):9.1f}{h['4xx']:6d}{h['5xx']:6d}{h['refused']:8d}"
    )
    rps = total / elapsed
    print(f"\nmixed throughput {rps:.1f} req/s; 5xx: {fivexx}; refused connections: {refused}")
    print(
        f"RESULT load throughput={rps:.1f} healthz={ref_rps:.1f} ratio={rps / ref_rps:.3f} goal=zero_5xx(5xx={fivexx})"
    )
    return 0 if fivexx == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
