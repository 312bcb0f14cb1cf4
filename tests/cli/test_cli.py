"""The `mlportal` command-line client against a live test server, over real HTTP: sign in, list,
upload with per-file verdicts, freeze, and one-line errors with their exit statuses."""

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cli"))
from apps.accounts.services import api_token_create
from mlportal_cli.main import cli
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("MLPORTAL_TOKEN", raising=False)
    monkeypatch.delenv("MLPORTAL_URL", raising=False)

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_sign_in_list_and_clear_errors(run, live_server, project, people, tmp_path):
    _, key = api_token_create(user=people["ds"], name="cli")
    r = run("login", "--url", live_server.url, "--token", "mlp_wrong")
    assert r.exit_code == 3 and "The portal refused the token (401)" in r.output
    r = run("login", "--url", live_server.url, "--token", key)
    assert r.exit_code == 0, r.output
    conf = json.loads((tmp_path / "config" / "mlportal" / "config.json").read_text())
    assert conf == {"url": live_server.url, "token": key}
    r = run("projects")
    assert r.exit_code == 0 and project.slug in r.output and "data_scientist" in r.output
    r = run("freeze", "no-such-project")
    assert r.exit_code == 3 and "No project 'no-such-project' among yours (404)." in r.output
    r = run("--url", "http://127.0.0.1:9", "projects")
    assert r.exit_code == 4 and "does not answer" in r.output
    r = run("train", project.slug, "--version", "1", "--config", "{oops")
    assert r.exit_code == 2 and "--config is not valid JSON" in r.output


def test_upload_a_folder_with_verdicts_then_freeze(run, live_server, project, people, tmp_path, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the import job runs when it is dispatched
    _, key = api_token_create(user=people["ds"], name="cli")
    folder = tmp_path / "screws"
    for label in ("good", "defect"):
        (folder / "train" / label).mkdir(parents=True)
        for i in range(3):
            (folder / "train" / label / f"{i}.png").write_bytes(png_bytes(seed=10 * len(label) + i))
    (folder / "train" / "good" / "fake.png").write_bytes(b"not an image at all")
    (folder / "README.txt").write_text("not uploaded")
    r = run("--url", live_server.url, "--token", key, "upload", project.slug, str(folder), "--labels-from-folders")
    assert r.exit_code == 0, r.output
    assert "rejected   train/good/fake.png  (Not an image" in r.output
    assert "accepted   train/defect/0.png" in r.output
    assert "6 accepted, 0 duplicate, 1 rejected" in r.output
    r = run("--url", live_server.url, "--token", key, "freeze", project.slug, "--split-from", "folders")
    assert r.exit_code == 0, r.output
    assert "Dataset version v1: 6 items, classes defect, good." in r.output


def test_register_promote_and_predict_as_table_csv_json(
    run, live_server, project, people, tmp_path, dv, register, second_manager, in_production
):
    from tests.registry.conftest import make_run
    from tests.training.conftest import tiny_png

    in_production(name="screws")
    _, key = api_token_create(user=people["ds"], name="cli", scopes=["read", "write", "predict"])
    base = ("--url", live_server.url, "--token", key)
    cand = make_run(project, dv, "good")
    r = run(*base, "register", project.slug, "--run", str(cand.pk), "--name", "screws")
    assert r.exit_code == 0 and "Registered screws v2." in r.output, r.output
    r = run(*base, "promote", project.slug, "screws", "2", "--note", "same data, fresh run")
    assert r.exit_code == 0 and "gate passed; status open" in r.output, r.output
    images = tmp_path / "line"
    images.mkdir()
    (images / "a.png").write_bytes(tiny_png(1, "defect"))
    (images / "b.png").write_bytes(tiny_png(2, "good"))
    r = run(*base, "predict", project.slug, "screws", str(images))
    assert r.exit_code == 0, r.output
    assert [line.split()[1] for line in r.output.splitlines()] == ["defect", "good"]
    r = run(*base, "predict", project.slug, "screws", str(images / "a.png"), "--format", "csv")
    assert r.output.splitlines()[0] == "file,class,confidence,model_version" and ",defect," in r.output
    r = run(*base, "predict", project.slug, "screws", str(images / "b.png"), "--format", "json")
    assert json.loads(r.output)[0]["class"] == "good"
    (images / "notes.png").write_bytes(b"plain text")
    r = run(*base, "predict", project.slug, "screws", str(images / "notes.png"))
    assert r.exit_code == 3 and "notes.png: The portal answered 400: image: Not an image" in r.output
    from apps.serving.engine import get_engine

    get_engine().writer.settle()  # the live server's log rows, written before the test database goes


from tests.registry.conftest import dv, in_production, register, second_manager  # noqa: E402,F401  (fixtures)


def test_predict_with_a_downloaded_bundle_needs_no_portal(
    run, live_server, project, people, tmp_path, dv, register, second_manager, in_production
):
    import requests

    from tests.training.conftest import tiny_png

    v = in_production(name="screws")
    _, key = api_token_create(user=people["ds"], name="cli")
    r = requests.get(
        f"{live_server.url}/api/v1/projects/{project.slug}/registry/models/{v.registered_model_id}/"
        f"versions/{v.number}/bundle/",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert r.status_code == 200
    bundle = tmp_path / "screws-v1.zip"
    bundle.write_bytes(r.content)
    (tmp_path / "a.png").write_bytes(tiny_png(1, "defect"))
    # No URL, no token, no portal: the bundle's own runtime answers.
    r = run("predict", "--bundle", str(bundle), str(tmp_path / "a.png"), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["class"] == "defect" and json.loads(r.output)[0]["model_version"] == 1
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    r = run("predict", "--bundle", str(tmp_path / "junk.zip"), str(tmp_path / "a.png"))
    assert r.exit_code == 2 and "is not a model bundle" in r.output
