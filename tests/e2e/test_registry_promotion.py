"""In a real Chromium: a data scientist requests promotion of a registered version, the gate
passes, a manager approves it in the inbox, and the version shows as production."""

import os

import pytest

from tests.factories import PASSWORD, approve_scope

from .conftest import watch

pytestmark = pytest.mark.e2e
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def test_request_gate_approve_production(transactional_db, live_server, browser, login, project, people, shot):
    from apps.registry.services import model_version_register
    from tests.registry.conftest import make_run, tiny_dataset_version

    approve_scope(
        project,
        [
            {"metric": "accuracy", "comparator": ">=", "target": 0.95},
            {"metric": "p95_latency_ms", "comparator": "<=", "target": 200},
        ],
    )
    dv = tiny_dataset_version(project)
    version = model_version_register(
        run=make_run(project, dv, "good"), registered_model_name="screw-classifier", user=people["ds"]
    )
    base = live_server.url
    version_url = f"{base}/p/{project.slug}/registry/models/{version.registered_model_id}/versions/{version.number}/"
    errors = []

    ds = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = watch(ds.new_page())
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "ds", PASSWORD)
    page.goto(version_url)
    assert page.inner_text("#version-stage") == "No stage"
    page.fill("#promote-note", "Perfect on the held-out screws; first candidate for the line.")
    page.click("#promote-form button[type=submit]")
    page.wait_for_selector("#gate-verdict")
    assert page.inner_text("#gate-verdict") == "✔ Passed"
    assert page.locator(".gate-fail").count() == 0
    assert "single-image predictions over the test split in a loaded serving engine" in page.inner_text("#gate")
    assert page.locator("#decide-form").count() == 0  # a data scientist cannot decide
    shot(page, "registry-request-ds")
    ds.close()

    mgr = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = watch(mgr.new_page())
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "manager", PASSWORD)
    page.goto(f"{base}/p/{project.slug}/registry/inbox/")
    row = page.locator("#inbox tr[data-request]")
    assert row.count() == 1 and "screw-classifier v1" in row.inner_text()
    row.locator("a.button").click()
    page.wait_for_selector("#decide-form")
    page.wait_for_selector("#chart-candcm .main-svg")  # the confusion matrix heatmap rendered
    page.fill("#decide-comment", "Gate green, matrices look right.")
    page.click("#approve")
    page.wait_for_selector("#request-status:has-text('Approved')")
    shot(page, "registry-request-approved")
    page.goto(version_url)
    assert page.inner_text("#version-stage") == "Production"
    page.goto(f"{base}/p/{project.slug}/registry/inbox/")
    assert page.locator("#inbox-empty").count() == 1
    mgr.close()
    assert errors == []
