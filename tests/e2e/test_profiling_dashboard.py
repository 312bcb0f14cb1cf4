"""The profiling dashboard in a real Chromium: progress polled from the job row, then the charts and
clickable thumbnails of the finished profile."""

import os
import threading

import pytest

from tests.profiling.conftest import _fast_passwords, known  # noqa: F401  (fixtures)

from .conftest import watch

pytestmark = pytest.mark.e2e
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
# ``browser``: the session's Chromium (tests/e2e/conftest.py); a second sync_playwright() in the same
# thread would fail ("Sync API inside the asyncio loop").


def test_progress_then_dashboard(transactional_db, live_server, browser, known, people, project, monkeypatch):
    from django.test import Client

    from apps.profiling import services
    from apps.profiling.services import runs

    version, items = known
    sent = []  # the thread below stands in for the Celery worker
    monkeypatch.setattr(runs, "dispatch", lambda task, *args, **kw: sent.append((getattr(task, "name", task), args)))
    run = services.profile_run_start(version=version, user=people["ds"])
    assert sent == [("apps.profiling.tasks.profile_run_execute", (run.pk,))]
    c = Client()
    c.force_login(people["labeler"])
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    ctx.add_cookies([{"name": "sessionid", "value": c.cookies["sessionid"].value, "url": live_server.url}])
    page = watch(ctx.new_page())
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/p/{project.slug}/profile/runs/{run.pk}/")
    assert "0 / 24 images" in page.inner_text("[data-progress-text]")
    # The worker runs meanwhile; the page polls the job row and reloads into the dashboard.
    worker = threading.Thread(target=services.profile_run_execute, kwargs={"run_id": run.pk})
    worker.start()
    worker.join()
    page.wait_for_selector(".js-plotly-plot", timeout=20000)
    assert len(page.query_selector_all(".js-plotly-plot")) >= 6  # balance + the varying statistics
    assert page.locator("#balance").count() == 1
    assert page.locator('[data-fig="split-brightness"].js-plotly-plot').count() == 0  # hidden until asked
    page.check("input[name=colourby][value=split]")
    page.wait_for_selector('[data-fig="split-brightness"].js-plotly-plot', timeout=10000)
    assert not page.is_visible('[data-fig="brightness"]')
    assert "train" in page.locator('[data-fig="split-brightness"] .legend').text_content()
    thumb = page.locator(f'a.thumb[href$="/items/{items["blank.png"].pk}/image"] img').first
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle(), timeout=10000)
    with ctx.expect_page() as opened:
        thumb.click()
    assert opened.value.url.endswith(f"/items/{items['blank.png'].pk}/image")
    assert "crosses splits" in page.inner_text("#duplicates ~ .dupgroup")
    assert errors == []
    ctx.close()
