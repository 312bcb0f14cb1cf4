import pytest
from django.core.exceptions import ValidationError

from apps.accounts.models import ProjectMember, Role
from apps.core.models import AuditEvent
from apps.projects import services
from apps.projects.models import Project

pytestmark = pytest.mark.django_db

FULL = {
    "dataset": "MVTec screws",
    "dataset_link": "https://example.com/screws",
    "model": "CNN",
    "code_language": "Python",
    "goal": "Find defects",
    "measurement": [{"metric": "accuracy", "comparator": ">=", "target": "0.95"}],
    "delivery": ["API"],
}


def errors_of(data):
    with pytest.raises(ValidationError) as exc:
        services.scope_clean(data)
    return exc.value.message_dict


def test_field_level_errors_name_the_field_and_reason():
    errs = errors_of(
        {
            "name": "  ",
            "dataset_link": "javascript:alert(1)",
            "measurement": [
                {"metric": "accuracy", "comparator": ">=", "target": "high"},
                {"metric": "Bad Metric!", "comparator": "=>", "target": 1},
            ],
        }
    )
    assert errs["name"] == ["The project name must not be empty."]
    assert "is not a valid link" in errs["dataset_link"][0]
    assert "Row 1: target 'high' is not a number." in errs["measurement"]
    assert any("Row 2: metric" in m for m in errs["measurement"])
    assert any("Row 2: comparator '=>'" in m for m in errs["measurement"])


def test_targets_reject_nan_duplicates_and_booleans():
    errs = errors_of(
        {
            "measurement": [
                {"metric": "accuracy", "comparator": ">=", "target": "nan"},
                {"metric": "recall", "comparator": ">=", "target": True},
                {"metric": "f1", "comparator": ">=", "target": 1},
                {"metric": "f1", "comparator": ">=", "target": 2},
            ]
        }
    )["measurement"]
    assert any("'nan' is not a number" in m for m in errs)
    assert any("True is not a number" in m for m in errs)
    assert any("f1 appears more than once" in m for m in errs)


def test_create_makes_the_creator_pm_with_a_first_revision(people):
    project = services.project_create(creator=people["ds"], name="Bolts", **FULL)
    assert ProjectMember.objects.filter(project=project, user=people["ds"], role=Role.PM).exists()
    # All five roles unless the creator chose fewer; PM always.
    assert set(ProjectMember.objects.filter(project=project, user=people["ds"]).values_list("role", flat=True)) == set(
        Role.values
    )
    chosen = services.project_create(creator=people["ds"], name="Rivets", creator_roles=["labeler"])
    assert set(ProjectMember.objects.filter(project=chosen).values_list("role", flat=True)) == {"pm", "labeler"}
    with pytest.raises(ValidationError, match="not a role"):
        services.project_create(creator=people["ds"], name="Studs", creator_roles=["owner"])
    assert not Project.objects.filter(name="Studs").exists()
    assert project.scope_revisions.get().number == 1
    assert [str(t) for t in project.targets] == ["accuracy ≥ 0.95"]
    assert project.targets[0].met_by(0.96) and not project.targets[0].met_by(0.9)


def test_bad_input_changes_nothing(project, people):
    before = project.scope_snapshot()
    with pytest.raises(ValidationError):
        services.scope_update(project=project, user=people["pm"], data={"goal": "new", "dataset_link": "nope"})
    project.refresh_from_db()
    assert project.scope_snapshot() == before and project.scope_revisions.count() == 0


def test_draft_submitted_approved_and_editing_reopens(people):
    project = services.project_create(creator=people["pm"], name="Nuts", **FULL)
    with pytest.raises(ValidationError, match="cannot be approved"):
        services.scope_approve(project=project, user=people["manager"])
    services.scope_submit(project=project, user=people["pm"])
    services.scope_approve(project=project, user=people["manager"], reason="fine")
    assert Project.objects.get(pk=project.pk).scope_status == "approved"
    assert AuditEvent.objects.filter(project=project, action="scope.approved", reason="fine").exists()
    services.scope_update(project=project, user=people["pm"], data={"goal": "Find all defects"})
    project.refresh_from_db()
    assert project.scope_status == "draft"
    assert [r.status for r in project.scope_revisions.order_by("number")] == ["draft", "submitted", "approved", "draft"]


def test_submit_needs_every_field(project, people):
    with pytest.raises(ValidationError, match="Dataset resource link"):
        services.scope_submit(project=project, user=people["pm"])


def test_return_needs_a_reason(people):
    project = services.project_create(creator=people["pm"], name="Washers", **FULL)
    services.scope_submit(project=project, user=people["pm"])
    with pytest.raises(ValidationError):
        services.scope_reject(project=project, user=people["manager"], reason=" ")


def test_diff_between_any_two_revisions(people):
    project = services.project_create(creator=people["pm"], name="Pins", **FULL)
    services.scope_update(
        project=project,
        user=people["pm"],
        data={"goal": "Find defects fast", "measurement": [{"metric": "accuracy", "comparator": ">=", "target": 0.97}]},
    )
    r1, r2 = project.scope_revisions.order_by("number")
    diff = {row["field"]: row for row in services.revision_diff(r1, r2)}
    assert diff["Project goal"]["changed"] and diff["Project goal"]["new"] == ["Find defects fast"]
    assert diff["Measurement"]["old"] == ["accuracy ≥ 0.95"] and diff["Measurement"]["new"] == ["accuracy ≥ 0.97"]
    assert not diff["Dataset"]["changed"]


def test_exports_markdown_and_csv_safely(people):
    project = services.project_create(creator=people["pm"], name="Pipes | =cmd", **{**FULL, "goal": "=HYPERLINK(1)"})
    md = services.scope_markdown(project)
    assert "| Project name | Pipes \\| =cmd |" in md and "accuracy ≥ 0.95" in md
    csv_text = services.scope_csv(project)
    assert "'=HYPERLINK(1)" in csv_text  # a spreadsheet will not run it


def test_diff_includes_the_checklist_notes(people):
    project = services.project_create(creator=people["pm"], name="Notes", **FULL)
    checklist = {**project.checklist, "data_available": {"answer": "yes", "note": "480 photographs from line 3"}}
    services.scope_update(project=project, user=people["pm"], data={"checklist": checklist})
    r1, r2 = project.scope_revisions.order_by("number")
    row = {row["field"]: row for row in services.revision_diff(r1, r2)}["Suitability checklist"]
    assert row["changed"] and any("note: 480 photographs from line 3" in line for line in row["new"])


def test_home_counts_every_member(client, people, project):
    client.force_login(people["pm"])
    r = client.get("/")
    [p] = [p for p in r.context["projects"] if p.pk == project.pk]
    assert p.member_count == 5  # pm, labeler, reviewer, ds, manager — not just the viewer
