"""In a real Chromium, the roles meet the promotion gate's "no" and find a way forward:

- the PM lowers the accuracy target in an unapproved draft; the data scientist's request still
  fails against the approved bar, and the page says the new targets await approval;
- the failed request waits in the manager's inbox as "gate failed"; approving it needs a written
  reason, which the version page shows from then on;
- the audit page renders those events; the monitoring page with no rules says so."""

import os

import pytest

from tests.factories import PASSWORD, approve_scope

from .conftest import watch

pytestmark = pytest.mark.e2e
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def test_draft_targets_failed_gate_exception_audit_and_monitoring(
    transactional_db, live_server, browser, login, project, people, shot
):
    from apps.projects.services import scope_update
    from apps.registry.services import model_version_register
    from tests.registry.conftest import make_run, tiny_dataset_version
    from tests.registry.test_api import METRICS

    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    dv = tiny_dataset_version(project)
    version = model_version_register(
        run=make_run(project, dv, metrics=dict(METRICS, accuracy=0.7)),
        registered_model_name="screw-classifier",
        user=people["ds"],
    )
    base = live_server.url
    version_url = f"{base}/p/{project.slug}/registry/models/{version.registered_model_id}/versions/{version.number}/"
    errors = []

    def context(user):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        ctx.set_default_timeout(15000)
        pg = watch(ctx.new_page())
        pg.on("pageerror", lambda e: errors.append(str(e)))
        login(pg, user, PASSWORD)
        return ctx, pg

    # The PM lowers the bar in a draft nobody approved.
    pm, page = context("pm")
    scope_update(
        project=project,
        user=people["pm"],
        data={**project.scope_snapshot(), "measurement": [{"metric": "accuracy", "comparator": ">=", "target": 0.6}]},
    )
    pm.close()

    ds, page = context("ds")
    page.goto(version_url)
    assert page.inner_text("#version-stage") == "No stage"
    page.fill("#promote-note", "0.7 on the held-out screws; the PM says 0.6 is enough now.")
    page.click("#promote-form button[type=submit]")
    page.wait_for_selector("#gate-verdict")
    assert page.inner_text("#gate-verdict") == "✘ Failed"
    assert "does not meet the target accuracy ≥ 0.95" in page.inner_text("#gate")
    assert "Targets awaiting approval" in page.inner_text("#targets-pending")
    assert "accuracy ≥ 0.6" in page.inner_text("#targets-pending")
    steps = page.inner_text("#next-steps")
    assert "Relabel the images this model got wrong" in steps and "Retrain" in steps and "PM changes them" in steps
    assert page.locator("#gate-failed-badge").is_visible()
    shot(page, "gate-failed-requester")
    # A disabled button looks disabled (the evaluation gallery's send button before a selection).
    page.goto(f"{base}/p/{project.slug}/training/runs/{version.run_id}/evaluation/")
    button = page.locator("#send-review")
    assert button.is_disabled()
    assert float(button.evaluate("b => getComputedStyle(b).opacity")) < 0.6
    assert button.evaluate("b => getComputedStyle(b).cursor") == "not-allowed"
    ds.close()

    mgr, page = context("manager")
    page.goto(f"{base}/p/{project.slug}/registry/inbox/")
    row = page.locator("#inbox tr[data-request]")
    assert row.count() == 1 and "gate failed" in row.inner_text()
    row.locator("a.button").click()
    page.wait_for_selector("#decide-form")
    page.fill("#decide-comment", "Only for the trial on line 2.")
    page.click("#approve")  # no reason yet: refused, nothing changes
    refused = page.wait_for_selector('#decide-form .errorlist[data-field="exception_reason"]')
    assert "written reason" in refused.inner_text()  # beside the field it names
    assert page.input_value("#decide-comment") == "Only for the trial on line 2."  # what was typed is kept
    shot(page, "gate-exception-refused")
    assert page.inner_text("#request-status") == "Open"
    page.fill("#exception-reason", "Line 2 trial needs a model today; the retrained v2 replaces it tonight.")
    page.fill("#decide-comment", "Trial only.")
    page.click("#approve")
    page.wait_for_selector("#request-status:has-text('Approved')")
    page.goto(version_url)
    assert page.inner_text("#version-stage") == "Production"
    assert "Line 2 trial needs a model today" in page.inner_text("#gate-exceptions")
    shot(page, "gate-exception-version")

    # The audit page shows every step, including the dataset version and the exception.
    page.goto(f"{base}/p/{project.slug}/audit/")
    audit = page.inner_text("main")
    for action in ("promotion_request.gate_failed", "promotion_request.gate_exception", "promotion_request.approve"):
        assert action in audit
    assert "Line 2 trial needs a model today" in audit
    shot(page, "audit-log")

    # Monitoring with no rules does not say "All quiet".
    page.goto(f"{base}/p/{project.slug}/monitoring/")
    assert "No alert rules yet" in page.inner_text("#no-rules")
    assert page.locator("#all-quiet").count() == 0
    shot(page, "monitoring-no-rules")
    mgr.close()
    assert errors == []
