"""Upload in a real browser: choose files, watch both progress bars fill, read each file's result."""

import os

import pytest

from apps.datasets.models import Item
from tests.factories import PASSWORD, member, png_bytes

pytestmark = pytest.mark.e2e
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def eager_celery():
    from mlportal.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the live server's thread runs the ingest job itself
    yield
    app.conf.task_always_eager = old


def test_upload_page_shows_progress_and_a_result_per_file(live_server, page, eager_celery, tmp_path):
    from tests.factories import ProjectFactory

    project = ProjectFactory()
    member(project, "data_scientist", username="ds-e2e")
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.png").write_bytes(png_bytes(size=(64, 64), seed=1))
    (tmp_path / "text.png").write_bytes(b"plain text, not a picture")
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "ds-e2e")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{live_server.url}/p/{project.slug}/data/upload/")
    page.set_input_files("#file-input", [str(good / "a.png"), str(tmp_path / "text.png")])
    assert page.inner_text("#start") == "Upload 2 files"
    page.click("#start")
    page.wait_for_function("document.querySelector('#t-process').textContent.startsWith('done')", timeout=60000)
    page.wait_for_function("document.querySelector('#results tbody').textContent.includes('accepted')", timeout=30000)
    assert page.get_attribute("#p-transfer", "style").replace(" ", "") == "width:100%;"
    assert page.get_attribute("#p-process", "style").replace(" ", "") == "width:100%;"
    rows = page.inner_text("#results tbody")
    assert "accepted" in rows and "rejected" in rows and "Not an image" in rows
    assert Item.objects.filter(project=project).count() == 1
