import pytest

from apps.accounts.models import Role
from apps.core.models import AuditEvent
from apps.projects.models import Project
from tests.factories import PASSWORD, ProjectFactory, member

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_pm_fills_the_scope_form_and_submits(page, live_server, login, shot):
    project = ProjectFactory(name="Screw line 3", slug="screw-line-3", goal="")
    pm = member(project, Role.PM, username="pm-e2e")
    login(page, pm.username, PASSWORD)
    page.click("text=Screw line 3")
    page.click(".projectnav >> text=Scope")

    # A bad first try: an invalid link and a target that is not a number get field-level errors.
    page.fill("#id_dataset", "MVTec screws, 480 photos")
    page.fill("#id_dataset_link", "not a link")
    page.fill("#id_model", "Small CNN")
    page.fill("#id_code_language", "Python")
    page.fill("#id_goal", "Catch defective screws before packing.")
    page.fill("#id_m-0-metric", "accuracy")
    page.select_option("#id_m-0-comparator", ">=")
    page.fill("#id_m-0-target", "ninety-five")
    page.fill("#id_delivery", "Prediction API\nMonitoring dashboard")
    page.click("#scope-save")
    assert "is not a valid link" in page.inner_text("[data-field=dataset_link]")
    assert "is not a number" in page.inner_text("[data-field=measurement]")
    shot(page, "scope-form-errors")

    page.fill("#id_dataset_link", "https://www.mvtec.com/company/research/datasets/mvtec-ad")
    page.fill("#id_m-0-target", "0.95")
    page.click("#add-target")
    page.fill("#id_m-1-metric", "p95_latency_ms")
    page.select_option("#id_m-1-comparator", "<=")
    page.fill("#id_m-1-target", "100")
    page.fill("#id_m-1-unit", "ms")
    for key in ("ml_suited", "data_available", "labelable", "metric_measurable", "outcome_owner"):
        page.check(f"input[name=check_{key}][value=yes]")
    page.click("#scope-save")
    assert "Scope saved" in page.inner_text(".messages")
    assert page.inner_text("#verdict") == "Suited to ML"
    page.click("#scope-submit")
    assert page.inner_text("#scope-status") == "Submitted"
    shot(page, "scope-form-submitted")

    project = Project.objects.get(pk=project.pk)
    assert project.scope_status == "submitted"
    assert [str(t) for t in project.targets] == ["accuracy ≥ 0.95", "p95_latency_ms ≤ 100 ms"]
    assert project.delivery == ["Prediction API", "Monitoring dashboard"]
    assert list(project.scope_revisions.values_list("status", flat=True)) == ["submitted", "draft"]
    assert AuditEvent.objects.filter(project=project, action="scope.submitted", actor=pm).exists()
