import pytest
from django.core.management import call_command

from apps.accounts.models import ProjectMember
from apps.projects.models import Project

pytestmark = pytest.mark.django_db


def test_seed_demo_twice_is_safe(client):
    call_command("seed_demo", "--no-images")
    call_command("seed_demo", "--no-images")
    project = Project.objects.get(slug="screw-defect-detection")
    assert Project.objects.filter(name="Screw defect detection").count() == 1
    roles = sorted(ProjectMember.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == [
        ("labeler", "labeler"),
        ("manager", "manager"),
        ("pm", "pm"),
        ("reviewer", "reviewer"),
        ("scientist", "data_scientist"),
    ]
    assert [str(t) for t in project.targets] == ["accuracy ≥ 0.95", "p95_latency_ms ≤ 100 ms"]
    # The demo's bar is approved, so the promotion gate checks it; seeding again adds no revision.
    assert [str(t) for t in project.approved_targets] == ["accuracy ≥ 0.95", "p95_latency_ms ≤ 100 ms"]
    assert project.scope_status == "approved" and project.targets_pending() is None
    assert project.scope_revisions.filter(status="approved").count() == 1
    # A plan to start from: a milestone per stage with its owner, made once.
    owners = dict(project.milestones.values_list("stage", "owner__username"))
    assert len(owners) == 8 and owners["labeling"] == "labeler" and owners["registry"] == "manager"
    assert project.plan.planned_items == 480
    r = client.post("/login/", {"username": "scientist", "password": "demo-portal-2026"})  # the sign-in form
    assert r.status_code == 302
    assert client.get(f"/p/{project.slug}/").status_code == 200


def test_login_page(client):
    assert client.get("/login/").status_code == 200
    r = client.post("/login/", {"username": "nobody", "password": "x"})
    assert b"didn&#x27;t match" in r.content or b"didn't match" in r.content
