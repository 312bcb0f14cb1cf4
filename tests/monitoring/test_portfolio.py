"""The manager's portfolio: every project of the user, its stage, its approved targets against the
production model's measured figures, the open promotion requests across projects, open alerts."""

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import ProjectMember
from apps.monitoring.models import Alert
from apps.projects.models import Milestone, ProjectPlan
from apps.registry.models import ModelVersion, PromotionRequest
from tests.factories import ProjectFactory, approve_scope

from .conftest import served_version

pytestmark = pytest.mark.django_db


def test_the_portfolio_shows_each_project_its_targets_requests_and_alerts(project, people):
    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    prod = served_version(project)  # in production, measured at accuracy 0.97
    ModelVersion.objects.filter(pk=prod.pk).update(metrics={"accuracy": 0.97})
    v2 = served_version(project, version=prod.dataset_version, stage="staging")
    req = PromotionRequest.objects.create(version=v2, requested_by=people["ds"], note="more data", gate_passed=True)
    Alert.objects.create(project=project, title="Error rate above 5 %", value=0.08, threshold=0.05)
    other = ProjectFactory(name="Gears", scope_status="draft")
    ProjectMember.objects.create(project=other, user=people["manager"], role="manager")
    ProjectFactory(name="Not mine")

    c = Client()
    c.force_login(people["manager"])
    html = c.get("/portfolio/").content.decode()
    rows = html.split('id="portfolio"')[1]
    assert rows.index(">Gears<") < rows.index(f">{project.name}<") and "Not mine" not in html
    mine = rows.split(f'data-project="{project.slug}"')[1].split("</tr>")[0]
    assert "In production" in mine and "✔ accuracy ≥ 0.95: 0.970" in mine and "Error rate above 5 %" in mine
    assert 'badge attention">1<' in mine
    gears = rows.split(f'data-project="{other.slug}"')[1].split("</tr>")[0]
    assert "Scope" in gears and "no approved target" in gears
    inbox = html.split('id="portfolio-inbox"')[1].split("</table>")[0]
    assert f"/registry/requests/{req.pk}/" in inbox and "passed" in inbox
    # A labeler sees their project, not the manager's other one; signed out: the login page.
    c.force_login(people["labeler"])
    assert "Gears" not in c.get("/portfolio/").content.decode()
    assert Client().get("/portfolio/").status_code == 302


def test_the_portfolio_costs_the_same_queries_at_20_projects_as_at_2(people):
    c = Client()
    c.force_login(people["manager"])

    def queries(n):
        for i in range(n):
            p = ProjectFactory(name=f"P{n}-{i}")
            ProjectMember.objects.create(project=p, user=people["manager"], role="manager")
            # a slipping milestone whose actual dates were read a minute ago (not re-read per project)
            ProjectPlan.objects.create(project=p, actuals_at=timezone.now() - dt.timedelta(minutes=1))
            Milestone.objects.create(project=p, stage="data", planned_end=timezone.localdate() - dt.timedelta(days=1))
        with CaptureQueriesContext(connection) as ctx:
            assert c.get("/portfolio/").status_code == 200
        return len(ctx.captured_queries)

    assert queries(2) == queries(18)  # one query per kind of row, never one per project
