"""In a real Chromium: a manager opens the portfolio, reads each project's stage, targets and alerts,
and goes from the cross-project inbox to a waiting promotion request."""

import os

import pytest

from tests.factories import PASSWORD, ProjectFactory, approve_scope

from .conftest import watch

pytestmark = pytest.mark.e2e
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def test_the_manager_reads_the_portfolio_and_opens_a_waiting_request(
    transactional_db, live_server, browser, login, project, people, shot
):
    from apps.accounts.models import ProjectMember
    from apps.monitoring.models import Alert
    from apps.registry.models import ModelVersion, PromotionRequest
    from tests.monitoring.conftest import served_version

    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    prod = served_version(project)
    ModelVersion.objects.filter(pk=prod.pk).update(metrics={"accuracy": 0.91})  # below the bar
    v2 = served_version(project, version=prod.dataset_version, stage="staging")
    req = PromotionRequest.objects.create(version=v2, requested_by=people["ds"], note="retrained", gate_passed=True)
    Alert.objects.create(project=project, title="Error rate above 5 %", value=0.08, threshold=0.05)
    gears = ProjectFactory(name="Gears", scope_status="draft")
    ProjectMember.objects.create(project=gears, user=people["manager"], role="manager")

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = watch(ctx.new_page())
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "manager", PASSWORD)
    page.click("#portfolio-link")
    page.wait_for_selector("#portfolio")
    row = page.locator(f'tr[data-project="{project.slug}"]')
    assert "✘ accuracy ≥ 0.95: 0.910" in row.inner_text() and "Error rate above 5 %" in row.inner_text()
    assert row.locator(".stage-dots .dot.on").count() >= 1
    assert "Scope" in page.locator(f'tr[data-project="{gears.slug}"]').inner_text()
    shot(page, "portfolio")
    page.locator("#portfolio-inbox a.button").first.click()
    page.wait_for_url(f"**/registry/requests/{req.pk}/")
    assert errors == []
    ctx.close()
