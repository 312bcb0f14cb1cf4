"""The ``mlportal`` command. Every command talks to the portal's REST API with the token kept by
``mlportal login`` (or ``--token`` / ``MLPORTAL_TOKEN``); errors are one line on stderr and a non-zero
exit status: 2 for bad input, 3 for the portal refusing (bad token, unknown project), 4 when the
portal does not answer."""

import csv
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import click
import requests

CHUNK = 2_000_000
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class PortalError(click.ClickException):
    def __init__(self, message, code=3):
        super().__init__(message)
        self.exit_code = code


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mlportal" / "config.json"


def config_load() -> dict:
    try:
        return json.loads(config_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


class Portal:
    """A thin client: the base URL, the token, and a session that keeps its connection alive."""

    def __init__(self, url, token):
        if not url or not token:
            raise PortalError(
                "Not signed in: run `mlportal login --url URL --token TOKEN` first "
                "(a token from the portal's Tokens page).",
                code=2,
            )
        self.url, self.token = url.rstrip("/"), token
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method, path, *, expect=(200, 201), **kw):
        url = path if path.startswith("http") else f"{self.url}/api/v1/{path.lstrip('/')}"
        try:
            r = self.http.request(method, url, timeout=kw.pop("timeout", 120), **kw)
        except requests.ConnectionError:
            raise PortalError(
                f"The portal at {self.url} does not answer (is it running? is the URL right?).", code=4
            ) from None
        except requests.Timeout:
            raise PortalError(f"The portal at {self.url} did not answer in time.", code=4) from None
        if r.status_code in expect:
            return r.json() if r.content else {}
        raise PortalError(self._why(r, path))

    def _why(self, r, path):
        try:
            body = r.json()
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        if r.status_code == 401:
            return f"The portal refused the token (401): {detail or 'not valid'}. Sign in again with `mlportal login`."
        if r.status_code == 403:
            return f"Not allowed (403): {detail or 'your role or the token scopes do not allow this'}."
        if isinstance(body, dict) and body:
            parts = []
            if body.get("errors"):  # the per-file errors say it all; the detail repeats them
                body = {"errors": body["errors"]}
            for k, v in body.items():
                if k == "errors" and isinstance(v, list):
                    parts += [f"{e.get('file') or e.get('field')}: {e.get('error')}" for e in v]
                elif k not in ("request_id",):
                    parts.append(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}")
            return f"The portal answered {r.status_code}: " + "; ".join(parts)
        return f"The portal answered {r.status_code} for {path}."


def portal(ctx) -> Portal:
    conf = config_load()
    return Portal(
        ctx.obj.get("url") or os.environ.get("MLPORTAL_URL") or conf.get("url"),
        ctx.obj.get("token") or os.environ.get("MLPORTAL_TOKEN") or conf.get("token"),
    )


def project_path(p, slug):
    """``projects/<slug>``, after checking the project is one of yours (a clear line if not)."""
    try:
        p.call("GET", f"projects/{slug}/")
    except PortalError as exc:
        if "404" in str(exc):
            raise PortalError(f"No project {slug!r} among yours (404).") from exc
        raise
    return f"projects/{slug}"


@click.group()
@click.option("--url", help="The portal's address (default: the one `login` kept).")
@click.option("--token", help="A personal (mlp_) or project (mlpp_) token (default: the one `login` kept).")
@click.pass_context
def cli(ctx, url, token):
    """The ML Portal from a terminal."""
    ctx.obj = {"url": url, "token": token}


@cli.command()
@click.option("--url", "login_url", required=True, help="e.g. http://127.0.0.1:8000")
@click.option("--token", "login_token", prompt="Token (from the portal's Tokens page)", hide_input=True)
def login(login_url, login_token):
    """Check a token against the portal and keep it (with the URL) in ~/.config/mlportal/config.json."""
    p = Portal(login_url, login_token)
    projects = p.call("GET", "projects/")
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": p.url, "token": login_token}))
    path.chmod(0o600)
    click.echo(
        f"Signed in to {p.url}; {projects.get('count', len(projects.get('results', [])))} project(s). "
        f"Token kept in {path}."
    )


@cli.command()
@click.pass_context
def projects(ctx):
    """Your projects."""
    rows = portal(ctx).call("GET", "projects/").get("results", [])
    for r in rows:
        click.echo(f"{r['slug']:<32} {r['scope_status']:<10} {', '.join(r.get('my_roles', []))}")
    if not rows:
        click.echo("No projects yet.")


def _files_of(path: Path):
    if path.is_file():
        return [(path.name, path)]
    if path.is_dir():
        return [
            (f.relative_to(path).as_posix(), f)
            for f in sorted(path.rglob("*"))
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
        ]
    raise PortalError(f"{path} is neither a file nor a folder.", code=2)


@cli.command()
@click.argument("project")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--labels-from-folders", is_flag=True, help="The parent folder of each image is its label.")
@click.pass_context
def upload(ctx, project, path, labels_from_folders):
    """Upload a folder of images or a zip (resumable), import it and print each file's verdict."""
    p = portal(ctx)
    base = project_path(p, project)
    files = _files_of(path)
    if not files:
        raise PortalError(f"No image files under {path}.", code=2)
    total = sum(f.stat().st_size for _, f in files)
    ids = []
    with click.progressbar(length=total, label=f"Uploading {len(files)} file(s)", file=sys.stderr) as bar:
        for name, f in files:
            size = f.stat().st_size
            up = p.call("POST", f"{base}/data/uploads/", json={"filename": name, "size": size})
            offset = up["offset"]
            with open(f, "rb") as fh:
                while offset < size:
                    fh.seek(offset)
                    chunk = fh.read(CHUNK)
                    r = p.http.put(
                        f"{p.url}/api/v1/{base}/data/uploads/{up['id']}/",
                        data=chunk,
                        timeout=120,
                        headers={"Upload-Offset": str(offset), "Content-Type": "application/octet-stream"},
                    )
                    if r.status_code == 409:  # the server has another offset (a resent chunk): go on from it
                        offset = r.json()["offset"]
                        continue
                    if r.status_code != 200:
                        raise PortalError(p._why(r, base))
                    bar.update(r.json()["offset"] - offset)
                    offset = r.json()["offset"]
            ids.append(up["id"])
    job = p.call("POST", f"{base}/data/imports/", json={"uploads": ids, "labels_from_folders": labels_from_folders})
    with click.progressbar(length=max(job["total"], 1), label="Importing", file=sys.stderr) as bar:
        done = 0
        while job["status"] in ("queued", "running"):
            time.sleep(0.5)
            job = p.call("GET", f"{base}/data/imports/{job['id']}/")
            bar.update(job["processed"] - done)
            done = job["processed"]
    for f in job.get("archives_rejected", []) + job.get("files", []):
        click.echo(f"{f['result']:<10} {f['name']}" + (f"  ({f['reason']})" if f.get("reason") else ""))
    click.echo(
        f"Import #{job['id']} {job['status']}: {job['accepted']} accepted, {job['duplicates']} duplicate, "
        f"{job['rejected']} rejected, {job.get('skipped', 0)} skipped (not images)."
    )
    if job["status"] == "failed":
        raise PortalError(f"The import failed: {job.get('error')}")


@cli.command()
@click.argument("project")
@click.option("--name", default="")
@click.option("--seed", default=0, type=int)
@click.option("--split-from", type=click.Choice(["seeded", "folders"]), default="seeded")
@click.pass_context
def freeze(ctx, project, name, seed, split_from):
    """Freeze the project's labeled items into a new dataset version."""
    p = portal(ctx)
    v = p.call(
        "POST",
        f"{project_path(p, project)}/data/versions/",
        json={"name": name, "seed": seed, "split_from": split_from},
    )
    click.echo(f"Dataset version v{v['number']}: {v['item_count']} items, classes {', '.join(v['classes'])}.")


@cli.command()
@click.argument("project")
@click.option("--version", "dataset_version", required=True, type=int, help="the dataset version's number")
@click.option("--config", "config_json", default="{}", help='hyperparameters as JSON, e.g. {"epochs": 5}')
@click.option("--follow/--no-follow", default=True, help="print each epoch as it ends")
@click.pass_context
def train(ctx, project, dataset_version, config_json, follow):
    """Launch a training run and follow its epochs live."""
    try:
        config = json.loads(config_json)
    except json.JSONDecodeError as exc:
        raise PortalError(f"--config is not valid JSON: {exc}", code=2) from exc
    p = portal(ctx)
    base = project_path(p, project)
    run = p.call("POST", f"{base}/training/runs/", json={"dataset_version": dataset_version, "config": config})
    click.echo(f"Run #{run['id']} {run['status']} on the {run.get('queue', '')} queue.")
    if not follow:
        return
    seen = 0
    while True:
        live = p.call("GET", f"{base}/training/runs/{run['id']}/live/")
        for e in live["epochs"][seen:]:
            metrics = " ".join(
                f"{k}={v:.4f}" for k, v in e.items() if k not in ("epoch", "seconds") and isinstance(v, (int, float))
            )
            click.echo(f"epoch {e['epoch']}/{live['epochs_total']}  {metrics}")
        seen = len(live["epochs"])
        if live["status"] not in ("queued", "running"):
            break
        time.sleep(1)
    tm = live.get("test_metrics") or {}
    click.echo(
        f"Run #{run['id']} {live['status']}"
        + (f": test accuracy {tm['accuracy']:.4f}" if "accuracy" in tm else "")
        + (f" ({live['error']})" if live.get("error") else "")
    )
    if live["status"] != "succeeded":
        raise PortalError(f"Run #{run['id']} {live['status']}.")


@cli.command()
@click.argument("project")
@click.option("--run", "run_id", required=True, type=int)
@click.option("--name", "model_name", required=True, help="the registered model (created if new)")
@click.pass_context
def register(ctx, project, run_id, model_name):
    """Register a succeeded run as a new model version."""
    p = portal(ctx)
    v = p.call(
        "POST",
        f"{project_path(p, project)}/registry/models/",
        json={"run": run_id, "registered_model_name": model_name},
    )
    click.echo(f"Registered {v.get('model', model_name)} v{v['number']}.")


@cli.command()
@click.argument("project")
@click.argument("model")
@click.argument("number", type=int)
@click.option("--note", required=True, help="why this version should go to production")
@click.pass_context
def promote(ctx, project, model, number, note):
    """Request promotion of MODEL's version NUMBER (the gate runs now)."""
    p = portal(ctx)
    base = project_path(p, project)
    rm = next((m for m in p.call("GET", f"{base}/registry/models/").get("results", []) if m["name"] == model), None)
    if rm is None:
        raise PortalError(f"No registered model {model!r} in {project}.")
    req = p.call("POST", f"{base}/registry/models/{rm['id']}/versions/{number}/promotion/", json={"note": note})
    click.echo(f"Request #{req['id']}: gate {'passed' if req['gate_passed'] else 'FAILED'}; status {req['status']}.")
    for f in (req.get("gate") or {}).get("failures", []):
        click.echo(f"  ✘ {f}")


def _bundle_predictor(bundle: Path):
    """The bundle's own runtime (its serve.py: no portal, no Django) on its model, from a temp folder."""
    import importlib.util
    import tempfile

    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise PortalError(
            f"predict --bundle runs the model here and needs TensorFlow: "
            f"pip install -r requirements.txt from inside {bundle.name}.",
            code=2,
        ) from None
    folder = Path(tempfile.mkdtemp(prefix="mlportal-bundle-"))
    try:
        with zipfile.ZipFile(bundle) as zf:
            for name in ("serve.py", "model.keras", "model.json"):
                zf.extract(name, folder)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise PortalError(f"{bundle} is not a model bundle from the portal ({exc}).", code=2) from exc
    spec = importlib.util.spec_from_file_location("bundle_serve", folder / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.Predictor.from_files(str(folder / "model.keras"), str(folder / "model.json"))
    except module.IntegrityError as exc:
        raise PortalError(f"{bundle}: {exc}", code=3) from exc


@cli.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--serving-url", envvar="MLPORTAL_SERVING_URL", help="the serving process (default: the portal)")
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a model bundle (.zip) downloaded from the portal: predict here, with no portal at all",
)
@click.pass_context
def predict(ctx, args, fmt, serving_url, bundle):
    """Predict image files or folders: PROJECT MODEL PATH... with the production version, or
    --bundle FILE PATH... locally."""
    rows = []
    if bundle:
        predictor = _bundle_predictor(bundle)
        for _name, f in [f for path in args for f in _files_of(Path(path))]:
            try:
                answer = predictor.predict(f.read_bytes())
            except Exception as exc:  # the runtime's decoding error, named with its file
                raise PortalError(
                    f"{f}: not an image the model can read ({str(exc).splitlines()[0][:200]}).", code=3
                ) from exc
            rows.append(
                {
                    "file": str(f),
                    "class": answer["class"],
                    "confidence": answer["confidence"],
                    "model_version": predictor.meta.get("version", ""),
                    "probabilities": answer["probabilities"],
                }
            )
    else:
        if len(args) < 3:
            raise PortalError("Give PROJECT MODEL and at least one image file or folder (or --bundle FILE).", code=2)
        project, model, paths = args[0], args[1], args[2:]
        p = portal(ctx)
        base = (
            serving_url.rstrip("/") if serving_url else p.url
        ) + f"/api/v1/projects/{project}/serving/models/{model}/predict/"
        for _name, f in [f for path in paths for f in _files_of(Path(path))]:
            try:
                answer = p.call("POST", base, data=f.read_bytes(), headers={"Content-Type": "application/octet-stream"})
            except PortalError as exc:
                raise PortalError(f"{f}: {exc.message}", code=exc.exit_code) from exc
            rows.append(
                {
                    "file": str(f),
                    "class": answer["class"],
                    "confidence": answer["confidence"],
                    "model_version": answer["model_version"],
                    "probabilities": answer["probabilities"],
                }
            )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "class", "confidence", "model_version"])
        for r in rows:
            w.writerow([r["file"], r["class"], f"{r['confidence']:.4f}", r["model_version"]])
        click.echo(buf.getvalue().rstrip("\n"))
    else:
        for r in rows:
            click.echo(f"{r['file']:<50} {r['class']:<12} {r['confidence']:.3f}  v{r['model_version']}")


def main():  # pragma: no cover - the console script's entry
    cli()


if __name__ == "__main__":  # pragma: no cover
    cli()
