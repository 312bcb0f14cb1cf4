"""HTML pages: every endpoint for a member with the role, a member without it (403) and an outsider (404)."""

import io

import pytest
from django.urls import reverse
from PIL import Image

from apps.core.jobs import JobStatus
from apps.profiling import services
from apps.profiling.models import AssertionRule, GateOverride, ProfileRun
from tests.factories import ProjectFactory, field_errors, make_item

from .conftest import profile_now


@pytest.fixture
def profiled(known, people):
    version, items = known
    return profile_now(version, people["ds"]), items


def get(client, user, url):
    client.force_login(user)
    return client.get(url)


def post(client, user, url, data=None):
    client.force_login(user)
    return client.post(url, data or {})


def test_index_lists_versions_with_gate_and_history(client, profiled, people, project):
    run, _ = profiled
    url = reverse("profiling-index", args=[project.slug])
    for who in ("ds", "labeler", "pm", "manager", "reviewer"):
        r = get(client, people[who], url)
        assert r.status_code == 200
    body = r.content.decode()
    assert "v1" in body and "refused" in body and "Assertion history" in body and "No unreadable files" in body
    assert "Profile again" not in body  # the manager may not start profiles
    assert "Profile again" in get(client, people["ds"], url).content.decode()
    assert get(client, people["outsider"], url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


def test_start_from_the_page(client, known, people, project, django_capture_on_commit_callbacks):
    version, _ = known
    url = reverse("profiling-start", args=[project.slug])
    assert post(client, people["labeler"], url, {"version": version.number}).status_code == 403
    assert post(client, people["outsider"], url, {"version": version.number}).status_code == 404
    with django_capture_on_commit_callbacks() as callbacks:
        r = post(client, people["ds"], url, {"version": version.number})
    run = ProfileRun.objects.get(version=version)
    assert r.status_code == 302 and r["Location"] == reverse("profiling-run", args=[project.slug, run.pk])
    assert len(callbacks) == 1 and run.created_by == people["ds"]
    assert post(client, people["ds"], url, {"version": 99}).status_code == 404
    r = post(client, people["ds"], url, {"version": "latest"})
    assert r.status_code == 400 and field_errors(r.content.decode(), "version") == ["Enter a whole number."]


def test_running_profile_page_shows_progress_polled_from_the_job_row(client, known, people, project):
    version, _ = known
    run = services.profile_run_start(version=version, user=people["ds"])
    ProfileRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, processed=6)
    body = get(client, people["labeler"], reverse("profiling-run", args=[project.slug, run.pk])).content.decode()
    assert "6 / 24 images" in body and 'style="width:25%"' in body
    assert f'data-poll="{reverse("api-profiling-run", args=[project.slug, run.pk])}"' in body
    assert "Cancel" not in body  # a labeler may not cancel


def test_dashboard_shows_what_the_profile_found(client, profiled, people, project):
    run, items = profiled
    url = reverse("profiling-run", args=[project.slug, run.pk])
    r = get(client, people["labeler"], url)
    body = r.content.decode()
    assert r.status_code == 200 and "vendor/plotly-cartesian.min.js" in body and 'id="figs"' in body
    for stat in ("balance", "brightness", "contrast", "sharpness", "entropy", "bytes"):
        assert f'data-fig="{stat}"' in body
    for stat in ("brightness", "sharpness"):  # the same distributions coloured by split
        assert f'data-fig="split-{stat}"' in body
    assert "<td>defect</td>" in body and "<td>train</td>" in body  # sizes/modes/formats per class and split
    # Every image is 64×64: said in words, not drawn as a flat histogram.
    assert 'data-fig="width"' not in body and "<b>Width (px)</b> 64" in body and "<b>Aspect ratio (w/h)</b> 1" in body
    thumb = reverse("datasets-item-thumb", args=[project.slug, items["blank.png"].pk])
    full = reverse("datasets-item-image", args=[project.slug, items["blank.png"].pk])
    assert thumb in body and full in body  # the blank image among the outliers, clickable
    for title in ("Darkest", "Brightest", "Blurriest", "Smallest"):
        assert f"<h3>{title} " in body
    assert "crosses splits: test + train" in body and "dup-copy.png" in body and "broken.png" in body
    assert "Override the gate" not in body
    assert "Override the gate" in get(client, people["ds"], url).content.decode()
    assert get(client, people["outsider"], url).status_code == 404
    other = ProfileRun.objects.create(project=ProjectFactory(), version=run.version, status="succeeded")
    assert get(client, people["ds"], reverse("profiling-run", args=[project.slug, other.pk])).status_code == 404


def test_cancel_from_the_page(client, known, people, project):
    version, _ = known
    run = services.profile_run_start(version=version, user=people["ds"])
    url = reverse("profiling-cancel", args=[project.slug, run.pk])
    assert post(client, people["labeler"], url).status_code == 403
    assert post(client, people["outsider"], url).status_code == 404
    assert post(client, people["ds"], url).status_code == 302
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED


def test_compare_calls_out_differences(client, profiled, people, project):
    run_a, items = profiled
    from tests.factories import make_version

    from .conftest import smooth_png

    entries = [(make_item(project, smooth_png(300 + k), name=f"n{k}.png"), "train", "good") for k in range(5)]
    run_b = profile_now(make_version(project, entries), people["ds"])
    url = reverse("profiling-compare", args=[project.slug]) + f"?a={run_a.pk}&b={run_b.pk}"
    r = get(client, people["labeler"], url)
    body = r.content.decode()
    assert r.status_code == 200 and "What changed from v1" in body
    assert "Class defect" in body and "class gone" in body and "Unreadable files" in body
    assert "Exact duplicates across splits" in body
    assert get(client, people["outsider"], url).status_code == 404
    assert get(client, people["ds"], reverse("profiling-compare", args=[project.slug])).status_code == 200


def test_assertions_page_edit_and_suggest(client, profiled, people, project):
    run, _ = profiled
    url = reverse("profiling-assertions", args=[project.slug])
    body = get(client, people["labeler"], url).content.decode()
    assert "no_unreadable" in body and "readonly" in body and "Save assertions" not in body
    body = get(client, people["ds"], url + f"?suggest={run.pk}").content.decode()
    assert f"Suggested from profile #{run.pk}" in body and "min_images_per_class" in body
    doc = "assertions:\n  - check: min_images_per_class\n    min: 3\n  - check: single_size\n    severity: warning\n"
    assert post(client, people["labeler"], url, {"document": doc}).status_code == 403
    assert post(client, people["outsider"], url, {"document": doc}).status_code == 404
    assert post(client, people["ds"], url, {"document": doc}).status_code == 302
    assert list(AssertionRule.objects.filter(project=project).values_list("check_name", "severity")) == [
        ("min_images_per_class", "blocking"),
        ("single_size", "warning"),
    ]
    r = post(client, people["ds"], url, {"document": "assertions:\n  - check: min_images_per_class\n"})
    assert r.status_code == 400 and "parameter 'min' is required" in " ".join(
        field_errors(r.content.decode(), "document")
    )
    assert "check: min_images_per_class" in r.content.decode()  # the document sent comes back to be mended
    assert AssertionRule.objects.filter(project=project).count() == 2


def test_override_from_the_page(client, profiled, people, project):
    run, _ = profiled
    url = reverse("profiling-override", args=[project.slug, run.pk])
    assert (
        f'action="{url}"'
        in get(client, people["ds"], reverse("profiling-run", args=[project.slug, run.pk])).content.decode()
    )
    reason = {"reason": "Leak reviewed: the duplicate is a known calibration shot."}
    assert post(client, people["labeler"], url, reason).status_code == 403
    assert post(client, people["outsider"], url, reason).status_code == 404
    r = post(client, people["ds"], url, {"reason": ""})  # refused beside the field, on the run's page
    assert r.status_code == 400 and field_errors(r.content.decode(), "reason") and not GateOverride.objects.exists()
    assert post(client, people["ds"], url, reason).status_code == 302
    assert services.gate_check(run.version).passed


def test_item_images_only_for_members_of_the_items_project(client, profiled, people, project):
    run, items = profiled
    item = items["dup-original.png"]
    thumb = reverse("datasets-item-thumb", args=[project.slug, item.pk])
    r = get(client, people["labeler"], thumb)
    assert r.status_code == 200 and r["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (64, 64)
    r = get(client, people["labeler"], reverse("datasets-item-image", args=[project.slug, item.pk]))
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    assert get(client, people["outsider"], thumb).status_code == 404
    assert (
        get(client, people["outsider"], reverse("datasets-item-image", args=[project.slug, item.pk])).status_code == 404
    )
    elsewhere = make_item(ProjectFactory())
    assert (
        get(client, people["ds"], reverse("datasets-item-thumb", args=[project.slug, elsewhere.pk])).status_code == 404
    )
    broken = reverse("datasets-item-thumb", args=[project.slug, items["broken.png"].pk])
    assert get(client, people["ds"], broken).status_code == 422


def test_project_page_shows_the_profile_stage(client, profiled, people, project):
    body = get(client, people["labeler"], reverse("project-detail", args=[project.slug])).content.decode()
    assert reverse("profiling-index", args=[project.slug]) in body and "v1: 3 blocking check(s) fail" in body
