"""The plan: milestones per stage with owners, a resource estimate taken from the project's own
measured rates, planned vs actual, and slipping milestones flagged where people look."""

import datetime as dt
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.core.models import AuditEvent
from apps.core.stages import StageSpan
from apps.labeling.models import Annotation, LabelChange
from apps.projects import plan as plans
from apps.projects.models import Milestone, ProjectPlan
from tests.factories import field_errors, label_classes, make_item, set_label

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


def day(n):
    return TODAY + dt.timedelta(days=n)


def _timed_annotations(project, user, seconds, start):
    """One annotation per gap in ``seconds`` (first at ``start``), each on a new item, with its first label."""
    good, _ = label_classes(project)
    at = start
    items = []
    for gap in [0, *seconds]:
        at = at + dt.timedelta(seconds=gap)
        item = make_item(project)
        ann = Annotation.objects.create(item=item, user=user, label_class=good)
        Annotation.objects.filter(pk=ann.pk).update(created_at=at)
        set_label(item, good, user)
        change = LabelChange.objects.create(item=item, user=user, scope="final", old="", new="good")
        LabelChange.objects.filter(pk=change.pk).update(at=at)
        items.append(item)
    return items


def test_labeling_forecast_reads_seconds_per_item_from_annotation_timing_and_the_pace_of_the_last_week(project, people):
    now = timezone.now()
    # The labeler: gaps of 10, 12 and 14 s, then a two-hour break (not work), then 12 s.
    _timed_annotations(project, people["labeler"], [10, 12, 14, 7200, 12], now - dt.timedelta(days=1))
    _timed_annotations(project, people["reviewer"], [20, 20], now - dt.timedelta(days=2))
    for _ in range(14):  # 14 items not labeled yet
        make_item(project)
    plan = ProjectPlan.objects.create(project=project, planned_items=30)
    f = plans.project_forecasts(project, plan, now)["labeling_hours"]
    assert f.rates["seconds_per_item"] == {"labeler": 12.0, "reviewer": 20.0}
    # 9 labeled of 30 expected: 21 to go at the median working gap (12 s of 10,12,14,12,20,20 -> 13 s)
    assert f.rates["remaining"] == 21
    worked = 10 + 12 + 14 + 12 + 20 + 20
    assert f.value == pytest.approx((worked + 21 * 13) / 3600, abs=0.01)
    # 9 first labels in the last 7 days: 9/7 a day; 21 left -> ceil(21 / (9/7)) = 17 days
    assert f.finish == (now + dt.timedelta(days=17)).date()
    assert f"labeling finishes around {f.finish:%d %b} at the last 7 days' pace" in f.basis
    assert "labeler 12 s" in f.basis and "reviewer 20 s" in f.basis


def test_forecasts_say_what_they_lack_before_anything_was_measured(project):
    fs = plans.project_forecasts(project, plans.plan_of(project), timezone.now())
    assert set(fs) == {"labeling_hours", "compute_hours", "storage_gb"}
    assert all(f.value is None for f in fs.values())
    assert "No labeling timed yet" in fs["labeling_hours"].basis
    assert "No finished run timed yet" in fs["compute_hours"].basis
    assert "No image stored yet" in fs["storage_gb"].basis


def test_compute_and_storage_forecasts_extrapolate_measured_rates_to_the_plan(project, people):
    from apps.training.models import TrainingRun
    from tests.registry.conftest import tiny_dataset_version

    dv = tiny_dataset_version(project, profiled=False)
    for _ in range(2):
        TrainingRun.objects.create(
            project=project,
            dataset_version=dv,
            status="succeeded",
            config={},
            training_seconds=600,
            seconds_per_epoch=60,
            epochs_run=10,
        )
    plan = ProjectPlan.objects.create(project=project, planned_runs=5, planned_items=1000)
    fs = plans.project_forecasts(project, plan, timezone.now())
    assert fs["compute_hours"].value == pytest.approx((2 * 600 + 3 * 600) / 3600, abs=0.01)
    assert "1.0 min per epoch" in fs["compute_hours"].basis and "3 more of 5 planned" in fs["compute_hours"].basis
    from apps.datasets.models import Item

    mean = (
        sum(Item.objects.filter(project=project).values_list("bytes", flat=True))
        / Item.objects.filter(project=project).count()
    )
    assert fs["storage_gb"].value == pytest.approx(mean * 1000 / 1e9, abs=1e-3)
    assert "1,000 images expected" in fs["storage_gb"].basis


def test_only_the_pm_saves_the_plan_and_bad_input_is_refused_field_by_field(project, people):
    with pytest.raises(PermissionDenied):
        plans.plan_save(project=project, user=people["labeler"], estimate={"labeling_hours": 3})
    bad = {
        "data": {"planned_start": "2026-13-01", "planned_end": "", "owner": ""},
        "labeling": {"planned_start": "2026-12-10", "planned_end": "2026-12-01", "owner": "outsider"},
    }
    with pytest.raises(ValidationError) as exc:
        plans.plan_save(
            project=project,
            user=people["pm"],
            milestones={**bad, "launch": {}},
            estimate={"labeling_hours": "-1", "compute_hours": "nan", "planned_items": "1.5"},
        )
    errors = exc.value.message_dict
    assert "is not a date" in errors["data_start"][0]
    assert "cannot end (01 Dec 2026) before it starts (10 Dec 2026)" in errors["labeling_end"][0]
    assert "'outsider' is not a member of this project" in errors["labeling_owner"][0]
    assert "Unknown stage(s): launch" in errors["milestones"][0]
    assert set(errors) >= {"labeling_hours", "compute_hours", "planned_items"}
    assert not Milestone.objects.filter(project=project).exists() and not ProjectPlan.objects.exists()

    plans.plan_save(
        project=project,
        user=people["pm"],
        milestones={"labeling": {"planned_start": "2026-12-01", "planned_end": "2026-12-20", "owner": "labeler"}},
        estimate={"labeling_hours": "12.5", "planned_items": "480"},
    )
    m = Milestone.objects.get(project=project, stage="labeling")
    assert (m.planned_start, m.planned_end, m.owner) == (dt.date(2026, 12, 1), dt.date(2026, 12, 20), people["labeler"])
    assert plans.plan_of(project).labeling_hours == 12.5 and plans.plan_of(project).planned_items == 480
    event = AuditEvent.objects.get(project=project, action="plan.updated")
    assert event.data["milestones"]["labeling"]["owner"] == "labeler"


def test_milestone_status_done_late_slipping_and_on_track():
    m = Milestone(stage="labeling", planned_start=day(-10), planned_end=day(-1))
    now = timezone.now()
    assert plans.milestone_status(m, StageSpan(now, None), None, TODAY)[0] == "slipping"
    assert "not done (1 day(s) late)" in plans.milestone_status(m, StageSpan(now, None), None, TODAY)[1]
    assert plans.milestone_status(m, StageSpan(now, now), None, TODAY)[0] == "late"
    assert plans.milestone_status(m, StageSpan(now, now - dt.timedelta(days=3)), None, TODAY)[0] == "done"
    m2 = Milestone(stage="labeling", planned_start=day(-2), planned_end=day(5))
    assert plans.milestone_status(m2, StageSpan(), None, TODAY) == (
        "slipping",
        f"should have started {day(-2):%d %b} and has not",
    )
    assert plans.milestone_status(m2, StageSpan(now, None), None, TODAY)[0] == "on_track"
    from apps.core.stages import Forecast

    late = Forecast("labeling_hours", 3.0, "", stage="labeling", finish=day(9))
    status, why = plans.milestone_status(m2, StageSpan(now, None), late, TODAY)
    assert status == "slipping" and f"the forecast finishes {day(9):%d %b}, after the planned {day(5):%d %b}" == why
    assert plans.milestone_status(Milestone(stage="x"), StageSpan(), None, TODAY)[0] == "unplanned"


def test_actual_dates_come_from_the_stages_themselves(project, people):
    good, _ = label_classes(project)
    item = make_item(project)
    plans.plan_save(
        project=project, user=people["pm"], milestones={"data": {"planned_end": str(day(3))}, "labeling": {}}
    )
    view = plans.plan_view(project)
    rows = {r["stage"]: r for r in view["rows"]}
    assert rows["scope"]["actual_start"] == project.created_at
    assert rows["data"]["actual_start"] == item.created_at and rows["data"]["actual_end"] is None
    assert rows["labeling"]["actual_end"] is None
    set_label(item, good, people["labeler"])
    rows = {r["stage"]: r for r in plans.plan_view(project)["rows"]}
    assert rows["labeling"]["actual_end"] is not None  # every item carries a label
    assert Milestone.objects.get(project=project, stage="labeling").actual_end is not None  # stored for the portfolio


def _plan_with_a_slip(project, people):
    make_item(project)
    plans.plan_save(
        project=project,
        user=people["pm"],
        milestones={
            "data": {"planned_start": str(day(-9)), "planned_end": str(day(-2)), "owner": "ds"},
            "training": {"planned_start": str(day(5)), "planned_end": str(day(20)), "owner": "ds"},
        },
    )


def test_the_plan_page_shows_milestones_forecasts_and_the_timeline_and_the_pm_edits_it(project, people):
    _plan_with_a_slip(project, people)
    c = Client()
    c.force_login(people["labeler"])
    r = c.get(reverse("project-plan", args=[project.slug]))
    html = r.content.decode()
    assert r.status_code == 200
    assert 'id="plan-slipping"' in html and 'data-slipping="data"' in html and "(owner ds)" in html
    assert 'id="fig-timeline"' in html and 'id="chart-timeline"' in html
    fig = json.loads(json.dumps(r.context["view"]["chart"]))
    planned = fig["data"][1]
    assert "Data" in planned["y"] and "Training" in planned["y"]
    assert fig["layout"]["shapes"][0]["x0"] == TODAY.isoformat()  # today's line
    assert 'id="plan-form"' not in html  # a labeler reads the plan
    assert c.post(reverse("project-plan", args=[project.slug]), {"data_end": str(day(9))}).status_code == 403

    c.force_login(people["pm"])
    url = reverse("project-plan", args=[project.slug])
    assert 'id="plan-form"' in c.get(url).content.decode()
    r = c.post(url, {"data_start": str(day(-9)), "data_end": str(day(-20)), "storage_gb": "lots"})
    assert r.status_code == 400
    page = r.content.decode()
    assert "cannot end" in field_errors(page, "data_end")[0]
    assert "'lots' is not a number." in field_errors(page, "storage_gb")
    assert 'value="lots"' in page  # what was typed stays
    r = c.post(url, {"data_start": str(day(-9)), "data_end": str(day(9)), "data_owner": "pm", "storage_gb": "2"})
    assert r.status_code == 302
    m = Milestone.objects.get(project=project, stage="data")
    assert m.planned_end == day(9) and m.owner == people["pm"]
    assert not Milestone.objects.get(project=project, stage="training").planned_end  # the form sends all stages
    assert 'id="plan-slipping"' not in c.get(url).content.decode()


def test_the_pm_takes_a_forecast_as_the_estimate(project, people):
    make_item(project)
    c = Client()
    c.force_login(people["pm"])
    accept = reverse("project-plan-accept", args=[project.slug])
    r = c.post(accept, {"resource": "labeling_hours"})  # nothing timed yet
    assert (
        r.status_code == 400
        and "No forecast of labeling_hours yet: No labeling timed yet"
        in field_errors(r.content.decode(), "resource")[0]
    )
    r = c.post(accept, {"resource": "storage_gb"})
    assert r.status_code == 302
    assert (
        plans.plan_of(project).storage_gb == plans.project_forecasts(project, None, timezone.now())["storage_gb"].value
    )
    c.force_login(people["ds"])
    assert c.post(accept, {"resource": "storage_gb"}).status_code == 403


def test_a_slipping_milestone_is_flagged_on_the_project_page_and_in_the_portfolio(project, people):
    _plan_with_a_slip(project, people)
    c = Client()
    c.force_login(people["manager"])
    html = c.get(reverse("project-detail", args=[project.slug])).content.decode()
    assert 'id="plan-card"' in html and 'data-slipping="data"' in html
    assert html.count('<span class="badge slipping"') == 1  # on the Data stage's card
    html = c.get(reverse("portfolio")).content.decode()
    row = html[html.index(f'data-project="{project.slug}"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="badge slipping">Data</span>' in row and 'slipping">Training' not in row


def test_the_portfolio_rereads_stale_actual_dates_before_calling_a_milestone_slipping(project, people):
    _plan_with_a_slip(project, people)
    assert plans.slipping_by_project([project.pk]) == {project.pk: ["data"]}
    from tests.factories import make_version

    make_version(project, [])  # the data stage is done now
    ProjectPlan.objects.filter(project=project).update(actuals_at=timezone.now() - dt.timedelta(hours=1))
    assert plans.slipping_by_project([project.pk]) == {}


def test_plan_api_reads_for_members_and_writes_for_the_pm(project, people, api):
    _plan_with_a_slip(project, people)
    url = reverse("api-plan", args=[project.slug])
    r = api(people["labeler"]).get(url)
    assert r.status_code == 200
    body = r.json()
    assert body["slipping"] == ["data"] and [m["stage"] for m in body["milestones"]][:2] == ["scope", "data"]
    assert set(body["forecasts"]) == {"labeling_hours", "compute_hours", "storage_gb"}
    assert api(people["labeler"]).put(url, {"estimate": {"labeling_hours": 1}}, format="json").status_code == 403
    r = api(people["pm"]).put(url, {"milestones": {"data": {"planned_end": "soon"}}}, format="json")
    assert r.status_code == 400 and "is not a date" in str(r.json()["data_end"])
    r = api(people["pm"]).put(
        url, {"milestones": {"data": {"planned_end": str(day(4))}}, "accept_forecast": "storage_gb"}, format="json"
    )
    assert r.status_code == 200 and r.json()["slipping"] == [] and r.json()["estimate"]["storage_gb"] is not None


def test_every_stage_reports_when_it_actually_started_and_finished(project, people):
    from apps.core.stages import stage_spans
    from tests.security.conftest import build_world, in_production

    in_production(build_world(project, people))
    spans = stage_spans(project)
    for key in ("data", "training", "registry", "serving", "monitoring"):
        assert spans[key].started is not None, key
    assert spans["data"].finished and spans["training"].finished and spans["registry"].finished
    assert spans["serving"].finished is None  # in production, but no answer logged yet
    assert spans["monitoring"].finished is None  # a rule, but no logged answer
