"""A manager opens the monitoring dashboard: Plotly draws the charts from the rollups, the range
picker reloads the page for another range, and the firing alert is acknowledged and resolved."""

import pytest

from apps.monitoring import services
from apps.monitoring.models import Alert, RuleKind
from tests.factories import PASSWORD
from tests.monitoring.conftest import log_predictions, served_version

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_manager_reads_charts_picks_a_range_and_handles_an_alert(live_server, page, login, shot, project, people):
    mv = served_version(project)
    log_predictions(
        mv,
        [{"predicted_class": "good", "confidence": 0.9}] * 8 + [{"predicted_class": "defect", "confidence": 0.4}] * 2,
    )
    services.alert_rule_create(
        project=project, user=people["pm"], data={"name": "No worker", "kind": RuleKind.WORKER_DOWN, "threshold": 1}
    )
    [alert] = services.rules_evaluate(project=project)

    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "manager", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/monitoring/")
    page.wait_for_selector('[data-figure="volume"] .main-svg')
    assert page.locator('[data-figure="classes"] .main-svg').count() >= 1
    assert page.locator('[data-figure="confidence"] .main-svg').count() >= 1
    assert "no data in this range" in page.inner_text('[data-figure="psi"]')
    shot(page, "monitoring-dashboard")
    page.select_option("select[name=range]", "7d")
    page.wait_for_url(lambda u: "range=7d" in u)
    page.wait_for_selector('[data-figure="volume"] .main-svg')

    page.click(f"text=#{alert.pk}")
    page.click("#acknowledge")
    page.wait_for_selector("text=acknowledged")
    page.fill("textarea[name=note]", "worker restarted")
    page.click("#resolve")
    page.wait_for_selector("text=worker restarted")
    assert Alert.objects.get(pk=alert.pk).status == "resolved"
    assert errors == []
