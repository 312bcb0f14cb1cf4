"""The workspace's hot path ("next item" + "submit label"): few statements whatever the project's
size, compare-and-set on the label's revision, the one-query payload, and the batched labels an
import writes."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Role
from apps.labeling import services
from apps.labeling.models import Annotation, ItemLabel, LabelChange, LabelTask, Lease, TaskState
from apps.labeling.selectors import progress_for
from apps.labeling.services import annotations, queue
from tests.factories import ProjectFactory, member

API = "/api/v1/projects/{}/labeling/"


def _statements(fn):
    with CaptureQueriesContext(connection) as q:
        result = fn()
    # Transaction control (BEGIN/COMMIT, or savepoints inside the test's transaction) is not counted.
    return len(
        [x for x in q.captured_queries if x["sql"].split(" ")[0] not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")]
    ), result


def test_next_and_submit_take_the_same_few_statements_with_3_or_30_items(project, people, classes, items, api):
    client = api(people["labeler"])
    url = API.format(project.slug)
    counts = []
    for n in (3, 30):
        items(n if not counts else n - 3)
        client.post(url + "queue/next/", {"n": 1}, format="json")  # the first call syncs the queue
        Lease.objects.all().delete()
        nxt, r = _statements(lambda: client.post(url + "queue/next/", {"n": 1}, format="json"))
        assert r.status_code == 200
        item = r.json()["items"][0]
        sub, r = _statements(
            lambda item=item: client.post(
                url + f"items/{item['id']}/label/",
                {"label_class": "good", "expected_revision": item["revision"]},
                format="json",
            )
        )
        assert r.status_code == 200, r.content
        counts.append((nxt, sub))
    assert counts[0] == counts[1]
    # next: project+roles, settings, held, candidates, claim (2), payload;
    # submit: project+roles, item, class, state, annotation, lease, label, history, task
    assert counts[0][0] <= 7 and counts[0][1] <= 9, counts


def test_submit_after_a_change_between_read_and_write_is_a_conflict_and_writes_nothing(
    project, people, labeler2, classes, items, monkeypatch
):
    good, defect = classes
    [item] = items(1)
    services.annotation_submit(item=item, user=people["labeler"], label_class=good, expected_revision=0)
    stale = annotations._submit_state(item, labeler2)  # labeler2's read ...
    services.item_label_set(item=item, label_class=good, user=people["reviewer"], source="review")  # ... a save ...
    monkeypatch.setattr(annotations, "_submit_state", lambda item_, user_: stale)  # ... then labeler2's write
    with pytest.raises(services.LabelConflict) as exc:
        services.annotation_submit(item=item, user=labeler2, label_class=defect, expected_revision=1)
    assert "reviewer" in exc.value.messages[0] and "not saved" in exc.value.messages[0]
    label = ItemLabel.objects.get(item=item)
    assert (label.label_class, label.revision, label.updated_by) == (good, 2, people["reviewer"])
    assert not Annotation.objects.filter(user=labeler2).exists()
    assert not LabelChange.objects.filter(user=labeler2).exists()


def test_resubmit_updates_my_annotation_and_the_label_in_place(project, people, classes, items):
    good, defect = classes
    [item] = items(1)
    me = people["labeler"]
    first = services.annotation_submit(
        item=item, user=me, label_class=good, expected_revision=0, regions=[{"x": 1, "y": 1, "w": 4, "h": 4}]
    )
    second = services.annotation_submit(item=item, user=me, label_class=defect, expected_revision=1)
    assert second.pk == first.pk and second.final.revision == 2
    ann = Annotation.objects.get(pk=first.pk)
    assert (ann.label_class, ann.revision, ann.regions) == (defect, 2, [])
    label = ItemLabel.objects.get(item=item)
    assert (label.label_class, label.revision, label.source, label.updated_by) == (defect, 2, "labeler", me)
    history = list(LabelChange.objects.filter(item=item).order_by("id").values_list("scope", "old", "new"))
    assert history == [
        ("annotation", "", "good"),
        ("final", "", "good"),
        ("annotation", "good", "defect"),
        ("final", "good", "defect"),
    ]
    assert LabelChange.objects.filter(item=item, scope="final").first().old_regions == [
        {"x": 1.0, "y": 1.0, "w": 4.0, "h": 4.0}
    ]


def test_the_queue_payload_shows_the_current_label_mine_and_the_reason(project, people, classes, items, api):
    good, defect = classes
    its = items(2)
    me = people["labeler"]
    services.annotation_submit(item=its[1], user=me, label_class=defect, regions=[{"x": 2, "y": 2, "w": 5, "h": 5}])
    services.queue_for_review(item=its[1], reason="low confidence", requested_by=people["ds"])
    r = api(me).post(API.format(project.slug) + "queue/next/", {"n": 2}, format="json")
    first, second = r.json()["items"]
    assert first["id"] == its[1].pk  # the second look is at the front
    assert (first["label"], first["label_by"], first["revision"], first["reason"]) == (
        "defect",
        "labeler",
        1,
        "low confidence",
    )
    assert first["mine"] is None  # my earlier annotation was superseded by the second look
    assert first["regions"] == [{"x": 2.0, "y": 2.0, "w": 5.0, "h": 5.0}]
    assert first["image"].endswith(f"/{its[1].pk}/image") and first["name"] == "img001.png"
    assert (second["id"], second["label"], second["revision"], second["mine"], second["regions"]) == (
        its[0].pk,
        None,
        0,
        None,
        [],
    )


def test_counters_stay_right_after_submit_skip_undo_and_review(project, people, labeler2, classes, items):
    good, defect = classes
    its = items(4)
    me = people["labeler"]
    services.annotation_submit(item=its[0], user=me, label_class=good)
    services.annotation_submit(item=its[1], user=me, label_class=defect)
    services.item_skip(item=its[2], user=me)
    p = progress_for(project, me)
    assert (p["today"], p["left"], p["labeled"], p["total"], p["review"]) == (2, 2, 2, 4, 0)
    services.annotation_undo(item=its[1], user=me, expected_revision=1)
    p = progress_for(project, me)
    assert (p["today"], p["left"], p["labeled"]) == (1, 3, 1)
    ann = Annotation.objects.get(item=its[0], user=me)
    services.annotation_review(annotation=ann, reviewer=people["reviewer"], accept=False, comment="blurry")
    p = progress_for(project, me)
    assert (p["left"], p["labeled"]) == (4, 0)
    services.review_resolve(item=its[0], reviewer=people["reviewer"], label_class=defect, comment="scratch")
    p = progress_for(project, labeler2)
    assert (p["today"], p["left"], p["labeled"], p["total"]) == (0, 3, 1, 4)


def test_roles_come_with_the_project_in_one_query(project, people, classes, items, api):
    both = member(project, Role.LABELER, Role.REVIEWER, username="both")
    client = api(both)
    url = API.format(project.slug)
    assert client.get(url + "review/").status_code == 200
    items(1)
    assert client.post(url + "queue/next/", {"n": 1}, format="json").status_code == 200
    other = ProjectFactory()
    assert client.get(API.format(other.slug) + "review/").status_code == 404


def test_item_labels_add_labels_only_unlabeled_items_with_history_and_leaves_the_queue(project, people, classes, items):
    good, defect = classes
    its = items(3)
    services.queue_sync(project=project)
    services.annotation_submit(item=its[0], user=people["labeler"], label_class=good)
    done = services.item_labels_add(
        labels=[(its[0], defect), (its[1], defect), (its[2], good)], user=people["ds"], source="import"
    )
    assert done == [its[1].pk, its[2].pk]
    assert ItemLabel.objects.get(item=its[0]).label_class == good  # an existing label is kept
    assert ItemLabel.objects.get(item=its[1]).source == "import"
    assert list(LabelChange.objects.filter(source="import").order_by("item_id").values_list("item_id", "new")) == [
        (its[1].pk, "defect"),
        (its[2].pk, "good"),
    ]
    assert set(LabelTask.objects.values_list("state", flat=True)) == {TaskState.DONE}
    other = ProjectFactory()
    foreign = services.label_class_get_or_create(project=other, name="good")
    with pytest.raises(ValidationError):
        services.item_labels_add(labels=[(its[0], foreign)])


def test_a_labeler_who_loses_the_race_for_the_front_claims_the_next_item_without_asking_again(
    project, people, classes, items, monkeypatch
):
    """Labelers asking at the same moment read the same front of the queue; the one whose claim
    loses takes a spare candidate from the same read instead of querying the queue again."""
    items(5)
    services.queue_sync(project=project)
    front = queue._candidates(project, people["labeler"], timezone.now(), exclude=[], limit=1)[0][0]
    real_claim, reads = queue._claim, []
    real_candidates = queue._candidates

    def claim(task_id, version, user, until):
        if task_id == front:
            return False  # another labeler took it a moment ago
        return real_claim(task_id, version, user, until)

    def candidates(*args, **kwargs):
        reads.append(kwargs["limit"])
        return real_candidates(*args, **kwargs)

    monkeypatch.setattr(queue, "_claim", claim)
    monkeypatch.setattr(queue, "_candidates", candidates)
    got = services.queue_next(project=project, user=people["labeler"], n=1)
    assert len(got) == 1 and got[0] != front and len(reads) == 1
    assert Lease.objects.filter(user=people["labeler"]).count() == 1  # one claim only, not the spares


def test_a_save_with_next_hands_out_the_next_items_in_the_same_answer(project, people, labeler2, classes, items, api):
    """The workspace saves and advances in one round trip: the answer holds the saved item and
    the next items of the queue, leased to the caller as queue/next/ would lease them."""
    its = items(4)
    me, client = people["labeler"], api(people["labeler"])
    url = API.format(project.slug)
    [first] = client.post(url + "queue/next/", {"n": 1}, format="json").json()["items"]
    r = client.post(
        url + f"items/{first['id']}/label/", {"label_class": "good", "expected_revision": 0, "next": 2}, format="json"
    )
    assert r.status_code == 200, r.content
    data = r.json()
    assert (data["id"], data["mine"], data["revision"]) == (first["id"], "good", 1)
    handed = [i["id"] for i in data["next_items"]]
    assert len(handed) == 2 and first["id"] not in handed
    assert set(Lease.objects.filter(user=me).values_list("task__item_id", flat=True)) == set(handed)
    # labeler2 is not handed what I hold
    other = api(labeler2).post(url + "queue/next/", {"n": 4}, format="json").json()["items"]
    assert {i["id"] for i in other} == {i.pk for i in its} - set(handed) - {first["id"]}
    # without next the answer is the saved item alone
    r = client.post(url + f"items/{handed[0]}/label/", {"label_class": "defect"}, format="json")
    assert r.status_code == 200 and "next_items" not in r.json()
    # a skip can bring the next items too (here: the one I still hold)
    r = client.post(url + f"items/{handed[1]}/skip/", {"next": 3}, format="json")
    assert r.status_code == 200 and r.json()["next_items"] == []


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("label/", {"label_class": "good", "next": 21}, "next"),
        ("label/", {"label_class": "good", "next": "many"}, "next"),
        ("label/", {"label_class": "good", "next": -1}, "next"),
        ("skip/", {"next": 50}, "next"),
        ("skip/", {"next": "x"}, "next"),
    ],
)
def test_a_bad_next_is_a_400_naming_it_and_nothing_is_saved(project, people, classes, items, api, path, body, field):
    [it] = items(1)
    r = api(people["labeler"]).post(API.format(project.slug) + f"items/{it.pk}/{path}", body, format="json")
    assert r.status_code == 400 and field in r.json(), r.content
    assert not Annotation.objects.exists() and not Lease.objects.exists() and not ItemLabel.objects.exists()


def test_queue_next_names_a_bad_n(project, people, classes, items, api):
    items(1)
    url = API.format(project.slug) + "queue/next/"
    for bad in (0, 21, "two", True):
        r = api(people["labeler"]).post(url, {"n": bad}, format="json")
        assert r.status_code == 400 and "n must be a whole number from 1 to 20" in r.json()["n"][0], (bad, r.content)
    assert not Lease.objects.exists()


def test_progress_only_mine_answers_my_numbers_without_counting_the_project(project, people, classes, items, api):
    its = items(3)
    services.annotation_submit(item=its[0], user=people["labeler"], label_class=classes[0])
    client = api(people["labeler"])
    url = API.format(project.slug) + "progress/"
    with CaptureQueriesContext(connection) as q:
        r = client.get(url + "?only=mine")
    assert r.status_code == 200 and set(r.json()) == {"today", "rate_per_hour"} and r.json()["today"] == 1
    assert not any(
        "labeling_labeltask" in x["sql"] or 'COUNT(*) AS "__count" FROM "datasets_item"' in x["sql"]
        for x in q.captured_queries
    )
    full = client.get(url).json()
    assert (full["today"], full["left"], full["labeled"], full["total"]) == (1, 2, 1, 3)
    r = client.get(url + "?only=everything")
    assert r.status_code == 400 and "only" in r.json()
