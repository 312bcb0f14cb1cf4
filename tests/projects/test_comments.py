"""Comments on items, runs, model versions, promotion requests and alerts, with @mentions that reach
the people named (in the portal and by email, from a task)."""

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.projects import comments
from apps.projects.models import Comment
from apps.registry.models import Notification
from tests.factories import field_errors
from tests.security.conftest import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project, people):
    return build_world(project, people)


def _post(w, who, kind, pk, body, capture):
    with capture(execute=True):
        return comments.comment_post(project=w.project, user=w.people[who], kind=kind, target_id=pk, body=body)


def test_a_mention_notifies_the_member_named_in_the_portal_and_by_email(world, django_capture_on_commit_callbacks):
    w = world
    w.people["manager"].email = "manager@example.com"
    w.people["manager"].save()
    mail.outbox.clear()
    Notification.objects.all().delete()
    c = _post(
        w,
        "ds",
        "run",
        w.run.pk,
        "@manager can you look at the threshold? cc @outsider @nobody @ds.",
        django_capture_on_commit_callbacks,
    )
    assert [u.username for u in c.mentions.all()] == ["manager"]  # not outsiders, strangers, or oneself
    [note] = Notification.objects.filter(event="comment.mention")
    assert note.user == w.people["manager"]
    assert note.url == reverse("training-run", args=[w.project.slug, w.run.pk]) + f"#comment-{c.pk}"
    assert note.message.startswith(f"ds mentioned you on run #{w.run.pk}") and "threshold" in note.message
    [email] = [m for m in mail.outbox if "mentioned you" in m.subject]
    assert email.to == ["manager@example.com"]
    event = AuditEvent.objects.get(action="comment.posted", object_id=str(c.pk))
    assert event.data["mentions"] == ["manager"] and event.data["on"] == f"run {w.run.pk}"


@pytest.mark.parametrize("kind", ["item", "run", "version", "request", "alert"])
def test_every_kind_of_object_carries_its_thread_on_its_own_page(world, kind, django_capture_on_commit_callbacks):
    w = world
    obj = {"item": w.item, "run": w.run, "version": w.v1, "request": w.req, "alert": w.alert}[kind]
    c = _post(
        w, "labeler", kind, obj.pk, f"<script>alert(1)</script> on this {kind}, @pm", django_capture_on_commit_callbacks
    )
    spec, _ = comments.target_of(w.project, kind, obj.pk)
    client = Client()
    client.force_login(w.people["reviewer"])
    html = client.get(spec.url(w.project, obj)).content.decode()
    assert f'id="comment-{c.pk}"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<span class="mention" data-user="pm">@pm</span>' in html
    assert Notification.objects.filter(user=w.people["pm"], event="comment.mention", object_id=str(c.pk)).exists()


def test_comment_text_is_checked_and_the_target_must_be_the_projects(world, project, people):
    w = world
    with pytest.raises(ValidationError) as exc:
        comments.comment_post(project=project, user=people["ds"], kind="run", target_id=w.run.pk, body="  \n ")
    assert "the comment is empty" in exc.value.message_dict["body"][0]
    with pytest.raises(ValidationError) as exc:
        comments.comment_post(project=project, user=people["ds"], kind="run", target_id=w.run.pk, body="x" * 4001)
    assert "At most 4,000 characters (this one has 4,001)" in exc.value.message_dict["body"][0]
    with pytest.raises(ValidationError) as exc:
        comments.comment_post(project=project, user=people["ds"], kind="dataset", target_id=1, body="hi")
    assert "'dataset' cannot take comments; these can: alert, item, request, run, version" in str(exc.value)
    from tests.registry.conftest import make_run, tiny_dataset_version

    elsewhere = people["outsider"].memberships.first().project
    foreign = make_run(elsewhere, tiny_dataset_version(elsewhere, profiled=False), user=people["outsider"])
    with pytest.raises(ValidationError) as exc:
        comments.comment_post(project=project, user=people["ds"], kind="run", target_id=foreign.pk, body="hi")
    assert f"This project has no run {foreign.pk}." in exc.value.message_dict["target"]
    with pytest.raises(PermissionDenied):
        comments.comment_post(project=project, user=people["outsider"], kind="run", target_id=w.run.pk, body="hi")
    assert Comment.objects.filter(project=project).count() == 1  # the world's own


def test_the_author_edits_for_a_while_and_newly_mentioned_people_are_told(world, django_capture_on_commit_callbacks):
    w = world
    c = _post(w, "ds", "run", w.run.pk, "first @pm", django_capture_on_commit_callbacks)
    with pytest.raises(PermissionDenied, match="Only its author may edit a comment"):
        comments.comment_edit(comment=c, user=w.people["pm"], body="hijacked")
    Notification.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        comments.comment_edit(comment=c, user=w.people["ds"], body="first @pm and @reviewer")
    told = set(Notification.objects.filter(event="comment.mention").values_list("user__username", flat=True))
    assert told == {"reviewer"}  # pm was told already
    c.refresh_from_db()
    assert c.edited_at and c.body == "first @pm and @reviewer"
    Comment.objects.filter(pk=c.pk).update(created_at=c.created_at - dt.timedelta(minutes=16))
    c.refresh_from_db()
    with pytest.raises(
        PermissionDenied, match="can be edited for 15 minutes after it is posted; this one was posted 16"
    ):
        comments.comment_edit(comment=c, user=w.people["ds"], body="too late")
    assert Comment.objects.get(pk=c.pk).body == "first @pm and @reviewer"


def test_posting_from_a_page_goes_back_there_and_a_refused_post_keeps_the_text(world, project, people):
    w = world
    client = Client()
    client.force_login(people["labeler"])
    run_page = reverse("training-run", args=[project.slug, w.run.pk])
    url = reverse("project-comments", args=[project.slug, "run", w.run.pk])
    r = client.post(url, {"body": "ok @ds", "next": run_page})
    c = Comment.objects.latest("id")
    assert r.status_code == 302 and r["Location"] == f"{run_page}#comment-{c.pk}"
    r = client.post(url, {"body": "elsewhere", "next": "https://evil.example.com/p/x/"})
    assert r["Location"].startswith(url + "#comment-")  # never off the project
    r = client.post(url, {"body": "y" * 4001 + "<b>", "next": run_page})
    assert r.status_code == 400
    html = r.content.decode()
    assert "At most 4,000 characters" in field_errors(html, "body")[0]
    assert "y" * 4001 + "&lt;b&gt;" in html  # kept, escaped
    assert client.get(reverse("project-comments", args=[project.slug, "run", 999999])).status_code == 404
    outsider = Client()
    outsider.force_login(people["outsider"])
    assert outsider.post(url, {"body": "hi"}).status_code == 404


def test_the_edit_page_is_the_authors_within_the_window(world, project, people):
    w = world
    url = reverse("project-comment-edit", args=[project.slug, w.comment.pk])
    client = Client()
    client.force_login(people["pm"])
    assert client.get(url).status_code == 403
    client.force_login(people["ds"])
    assert client.get(url).status_code == 200
    r = client.post(url, {"body": ""})
    assert r.status_code == 400 and "the comment is empty" in field_errors(r.content.decode(), "body")[0]
    r = client.post(url, {"body": "changed my mind"})
    assert r.status_code == 302 and r["Location"].endswith(f"#comment-{w.comment.pk}")
    assert Comment.objects.get(pk=w.comment.pk).body == "changed my mind"


def test_comments_api(world, project, people, api):
    w = world
    url = reverse("api-comments", args=[project.slug])
    r = api(people["labeler"]).post(
        url, {"kind": "version", "target": w.v1.pk, "body": "ship it @manager"}, format="json"
    )
    assert r.status_code == 201 and r.json()["mentions"] == ["manager"] and r.json()["author"] == "labeler"
    r = api(people["pm"]).get(url, {"kind": "version", "target": w.v1.pk})
    assert [c["body"] for c in r.json()] == ["ship it @manager"]
    r = api(people["pm"]).get(url)
    assert r.status_code == 400 and "cannot take comments" in str(r.json())
    r = api(people["pm"]).post(url, {"kind": "run", "target": "abc", "body": "x"}, format="json")
    assert r.status_code == 400 and "'abc' is not an id." in str(r.json()["target"])
    one = reverse("api-comment", args=[project.slug, w.comment.pk])
    assert api(people["pm"]).patch(one, {"body": "mine now"}, format="json").status_code == 403
    r = api(people["ds"]).patch(one, {"body": "x" * 5000}, format="json")
    assert r.status_code == 400 and "At most 4,000 characters" in str(r.json()["body"])
    assert api(people["outsider"]).get(one).status_code == 404
    r = api(people["ds"]).patch(one, ["not", "an", "object"], format="json")
    assert r.status_code == 400 and Comment.objects.get(pk=w.comment.pk).body == "looks good @pm"
