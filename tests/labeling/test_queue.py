from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.labeling import services
from apps.labeling.models import Annotation, ItemLabel, LabelChange, LabelTask, Lease, ReviewDecision, TaskState
from apps.labeling.selectors import labeling_stage, progress_for


def ids_of(tasks):
    return [LabelTask.objects.get(pk=t).item_id for t in tasks]


def test_two_labelers_never_get_the_same_item_without_overlap(project, people, labeler2, classes, items):
    its = items(4)
    a = ids_of(services.queue_next(project=project, user=people["labeler"], n=2))
    b = ids_of(services.queue_next(project=project, user=labeler2, n=2))
    assert len(a) == len(b) == 2 and not set(a) & set(b)
    assert set(a) | set(b) == {i.pk for i in its}
    # Asking again hands back what each already holds, in the same order; nothing new is free.
    assert ids_of(services.queue_next(project=project, user=people["labeler"], n=2)) == a
    from apps.accounts.models import Role
    from tests.factories import member

    third = member(project, Role.LABELER, username="late")
    assert services.queue_next(project=project, user=third, n=2) == []


def test_an_abandoned_item_returns_to_the_queue_after_the_timeout(project, people, labeler2, classes, items, overlap):
    overlap(1, 0, lease_seconds=60)
    [it] = items(1)
    assert ids_of(services.queue_next(project=project, user=people["labeler"])) == [it.pk]
    assert services.queue_next(project=project, user=labeler2) == []
    Lease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert ids_of(services.queue_next(project=project, user=labeler2)) == [it.pk]


def test_submit_sets_the_label_records_history_and_frees_the_next(project, people, classes, items):
    good, defect = classes
    its = items(2)
    user = people["labeler"]
    [t] = services.queue_next(project=project, user=user)
    item = LabelTask.objects.get(pk=t).item
    services.annotation_submit(item=item, user=user, label_class=defect, expected_revision=0)
    label = ItemLabel.objects.get(item=item)
    assert (label.label_class, label.updated_by, label.revision) == (defect, user, 1)
    assert LabelTask.objects.get(pk=t).state == TaskState.DONE
    assert not Lease.objects.filter(task_id=t).exists()
    services.annotation_submit(item=item, user=user, label_class=good, expected_revision=1)
    changes = list(
        LabelChange.objects.filter(item=item, scope="final").order_by("id").values_list("user__username", "old", "new")
    )
    assert changes == [("labeler", "", "defect"), ("labeler", "defect", "good")]
    assert LabelChange.objects.filter(item=item, scope="annotation").count() == 2
    assert all(c.at for c in LabelChange.objects.all())
    assert ids_of(services.queue_next(project=project, user=user)) == [its[1].pk]


def test_second_save_of_the_same_item_gets_a_clear_conflict(project, people, labeler2, classes, items):
    good, defect = classes
    [item] = items(1)
    # Both opened the item when it had no label (revision 0); the first save wins.
    services.annotation_submit(item=item, user=people["labeler"], label_class=good, expected_revision=0)
    with pytest.raises(services.LabelConflict) as exc:
        services.annotation_submit(item=item, user=labeler2, label_class=defect, expected_revision=0)
    assert "labeler labeled" in exc.value.messages[0] and "good" in exc.value.messages[0]
    assert "not saved" in exc.value.messages[0]
    assert ItemLabel.objects.get(item=item).label_class == good
    assert not Annotation.objects.filter(user=labeler2).exists()  # nothing half-written


def test_conflict_over_the_api_is_409_with_the_message(project, people, labeler2, classes, items, api):
    good, defect = classes
    [item] = items(1)
    url = f"/api/v1/projects/{project.slug}/labeling/items/{item.pk}/label/"
    assert (
        api(people["labeler"]).post(url, {"label_class": "good", "expected_revision": 0}, format="json").status_code
        == 200
    )
    r = api(labeler2).post(url, {"label_class": "defect", "expected_revision": 0}, format="json")
    assert r.status_code == 409 and r.json()["conflict"] is True
    assert "labeler labeled" in r.json()["detail"]


def test_skip_hides_the_item_from_me_but_not_from_others(project, people, labeler2, classes, items):
    its = items(2)
    me = people["labeler"]
    [t] = services.queue_next(project=project, user=me)
    services.item_skip(item=its[0], user=me)
    assert ids_of(services.queue_next(project=project, user=me)) == [its[1].pk]
    assert ids_of(services.queue_next(project=project, user=labeler2)) == [its[0].pk]


def test_undo_takes_the_label_back_and_returns_the_item_to_me(project, people, classes, items):
    good, _ = classes
    its = items(2)
    me = people["labeler"]
    services.queue_next(project=project, user=me)
    services.annotation_submit(item=its[0], user=me, label_class=good, expected_revision=0)
    services.annotation_undo(item=its[0], user=me, expected_revision=1)
    assert not ItemLabel.objects.filter(item=its[0]).exists()
    assert not Annotation.objects.filter(item=its[0]).exists()
    assert LabelTask.objects.get(item=its[0]).state == TaskState.OPEN
    assert ids_of(services.queue_next(project=project, user=me, n=1)) == [its[0].pk]
    assert list(
        LabelChange.objects.filter(item=its[0], scope="final").order_by("id").values_list("old", "new", "source")
    ) == [("", "good", "labeler"), ("good", "", "undo")]
    with pytest.raises(ValidationError):
        services.annotation_undo(item=its[0], user=me)


def test_overlap_hands_an_item_to_n_labelers_and_disagreement_goes_to_review(
    project, people, labeler2, labeler3, classes, items, overlap
):
    good, defect = classes
    overlap(2, 1.0)
    [item] = items(1)
    me = people["labeler"]
    assert ids_of(services.queue_next(project=project, user=me)) == [item.pk]
    assert ids_of(services.queue_next(project=project, user=labeler2)) == [item.pk]
    assert services.queue_next(project=project, user=labeler3) == []  # two wanted, two holding
    services.annotation_submit(item=item, user=me, label_class=good)
    assert not ItemLabel.objects.filter(item=item).exists()  # waits for the second label
    services.annotation_submit(item=item, user=labeler2, label_class=defect)
    task = LabelTask.objects.get(item=item)
    assert (task.state, task.done) == (TaskState.REVIEW, 2)
    assert labeling_stage(project).summary == "0 of 1 labeled · 1 to review"
    d = services.review_resolve(item=item, reviewer=people["reviewer"], label_class=defect, comment="crack at the tip")
    assert ItemLabel.objects.get(item=item).label_class == defect
    assert ItemLabel.objects.get(item=item).source == "review"
    assert d.comment == "crack at the tip" and LabelTask.objects.get(item=item).state == TaskState.DONE
    with pytest.raises(ValidationError):
        services.review_resolve(item=item, reviewer=people["reviewer"], label_class=good, comment="")


def test_overlap_agreement_sets_the_label_without_review(project, people, labeler2, classes, items, overlap):
    good, _ = classes
    overlap(2, 1.0)
    [item] = items(1)
    services.annotation_submit(item=item, user=people["labeler"], label_class=good)
    services.annotation_submit(item=item, user=labeler2, label_class=good)
    assert ItemLabel.objects.get(item=item).label_class == good
    assert LabelTask.objects.get(item=item).state == TaskState.DONE


def test_overlap_applies_to_the_sample_share_only(project, classes, items, overlap):
    overlap(2, 0.1)
    items(200)
    services.queue_sync(project=project)
    needed = list(LabelTask.objects.filter(project=project).values_list("needed", flat=True))
    assert len(needed) == 200 and set(needed) == {1, 2}
    assert 5 <= needed.count(2) <= 40  # about 10%, decided by content hash


def test_reviewer_rejects_a_labelers_work_and_the_item_comes_back(project, people, labeler2, classes, items):
    good, defect = classes
    [item] = items(1)
    services.annotation_submit(item=item, user=people["labeler"], label_class=good)
    ann = Annotation.objects.get(item=item)
    with pytest.raises(ValidationError):
        services.annotation_review(annotation=ann, reviewer=people["reviewer"], accept=False, comment="")
    services.annotation_review(annotation=ann, reviewer=people["reviewer"], accept=False, comment="that is a scratch")
    assert not ItemLabel.objects.filter(item=item).exists()
    assert ids_of(services.queue_next(project=project, user=labeler2)) == [item.pk]
    assert "that is a scratch" in LabelTask.objects.get(item=item).reason
    services.annotation_submit(item=item, user=labeler2, label_class=defect)
    ann2 = Annotation.objects.get(item=item, user=labeler2)
    services.annotation_review(annotation=ann2, reviewer=people["reviewer"], accept=True)
    assert Annotation.objects.get(pk=ann2.pk).status == "accepted"
    assert list(ReviewDecision.objects.values_list("kind", flat=True)) == ["accept", "reject"]


def test_queue_for_review_puts_an_item_at_the_front(project, people, classes, items):
    good, _ = classes
    its = items(3)
    me = people["labeler"]
    services.annotation_submit(item=its[2], user=me, label_class=good)
    task = services.queue_for_review(
        item=its[2], reason="misclassified on the test split (p=0.41)", requested_by=people["ds"]
    )
    assert task.priority > 0 and task.state == TaskState.OPEN
    assert ItemLabel.objects.get(item=its[2]).label_class == good  # kept until someone decides again
    assert ids_of(services.queue_next(project=project, user=me)) == [its[2].pk]
    services.queue_for_review(item=its[2], reason="again")  # idempotent: still one task
    assert LabelTask.objects.filter(item=its[2]).count() == 1


def test_bulk_set_labels_many_and_keeps_history(project, people, classes, items):
    good, defect = classes
    its = items(5)
    assert (
        services.labels_bulk_set(
            project=project, user=people["labeler"], item_ids=[i.pk for i in its], label_class=defect
        )
        == 5
    )
    assert ItemLabel.objects.filter(label_class=defect, source="bulk").count() == 5
    assert LabelChange.objects.filter(source="bulk").count() == 5
    assert LabelTask.objects.filter(state=TaskState.OPEN).count() == 0
    with pytest.raises(ValidationError):
        services.labels_bulk_set(project=project, user=people["labeler"], item_ids=[999999], label_class=good)


def test_progress_counts_today_left_and_rate(project, people, classes, items):
    good, _ = classes
    its = items(4)
    for it in its[:3]:
        services.annotation_submit(item=it, user=people["labeler"], label_class=good)
    p = progress_for(project, people["labeler"])
    assert (p["today"], p["left"], p["labeled"], p["total"]) == (3, 1, 3, 4)
    assert p["rate_per_hour"] > 0
    assert labeling_stage(project).summary == "3 of 4 labeled"


def test_regions_are_checked_against_the_image(project, people, classes, items):
    good, defect = classes
    [item] = items(1)  # 32×32
    with pytest.raises(ValidationError) as exc:
        services.annotation_submit(
            item=item, user=people["labeler"], label_class=defect, regions=[{"x": 20, "y": 20, "w": 30, "h": 5}]
        )
    assert "inside the 32×32 image" in str(exc.value)
    services.annotation_submit(
        item=item, user=people["labeler"], label_class=defect, regions=[{"x": 2, "y": 3, "w": 10, "h": 5}]
    )
    assert ItemLabel.objects.get(item=item).regions == [{"x": 2.0, "y": 3.0, "w": 10.0, "h": 5.0}]


def test_item_label_set_contract_still_works_for_imports(project, classes, items):
    [item] = items(1)
    cls = services.label_class_get_or_create(project=project, name="scratch")
    assert cls.hotkey == "3"
    services.item_label_set(item=item, label_class=cls, source="import")
    with pytest.raises(services.LabelConflict):
        services.item_label_set(item=item, label_class=classes[0], expected_revision=0)
    assert LabelChange.objects.filter(item=item, source="import", new="scratch").exists()


def test_an_item_the_sync_missed_is_found_when_the_queue_looks_empty(project, people, classes, items):
    its = items(2)
    services.queue_sync(project=project)
    # An item committed late with a lower id than the sync mark (a long import on PostgreSQL).
    LabelTask.objects.filter(item=its[0]).delete()
    services.annotation_submit(item=its[1], user=people["labeler"], label_class=classes[0])
    assert ids_of(services.queue_next(project=project, user=people["labeler"])) == [its[0].pk]


def test_undo_with_a_malformed_revision_is_a_400(project, people, classes, items, api):
    [it] = items(1)
    services.annotation_submit(item=it, user=people["labeler"], label_class=classes[0])
    r = api(people["labeler"]).post(
        f"/api/v1/projects/{project.slug}/labeling/items/{it.pk}/undo/", {"expected_revision": "x"}, format="json"
    )
    assert r.status_code == 400 and "whole number" in str(r.json())


def test_relabeling_someone_elses_label_is_a_disagreement_for_review(client, project, people, labeler2, classes, items):
    from apps.labeling import selectors

    good, defect = classes
    [item] = items(1)
    services.annotation_submit(item=item, user=people["labeler"], label_class=good)
    services.queue_for_review(item=item, reason="misclassified on the test split", requested_by=people["ds"])
    assert ids_of(services.queue_next(project=project, user=labeler2)) == [item.pk]
    services.annotation_submit(item=item, user=labeler2, label_class=defect)
    task = LabelTask.objects.get(item=item)
    assert task.state == TaskState.REVIEW and "labeler2 relabeled good → defect" in task.reason
    [dispute] = selectors.review_queue(project)
    assert dispute["replaced"] == {
        **dispute["replaced"],
        "before": "good",
        "before_by": "labeler",
        "after": "defect",
        "after_by": "labeler2",
    }
    client.force_login(people["reviewer"])
    html = client.get(f"/p/{project.slug}/labeling/review/").content.decode()
    assert "data-replaced" in html and "before: <b>good</b>" in html and "now: <b>defect</b>" in html
    # The same labeler changing their own label is no disagreement.
    [other] = [i for i in items(2) if i.pk != item.pk][:1]
    services.annotation_submit(item=other, user=labeler2, label_class=good)
    services.annotation_submit(item=other, user=labeler2, label_class=defect)
    assert LabelTask.objects.get(item=other).state == TaskState.DONE


def test_rejecting_a_replacement_restores_the_label_before_it(project, people, labeler2, classes, items):
    good, defect = classes
    [item] = items(1)
    services.annotation_submit(item=item, user=people["labeler"], label_class=good)
    services.queue_for_review(item=item, reason="second look", requested_by=people["ds"])
    services.annotation_submit(item=item, user=labeler2, label_class=defect)
    ann = Annotation.objects.get(item=item, user=labeler2)
    services.annotation_review(annotation=ann, reviewer=people["reviewer"], accept=False, comment="no, it is fine")
    assert ItemLabel.objects.get(item=item).label_class == good  # not left unlabelled
    # Undo of a replacement gives the earlier label back too.
    [other] = [i for i in items(2) if i.pk != item.pk]
    services.annotation_submit(item=other, user=people["labeler"], label_class=good)
    services.queue_for_review(item=other, reason="second look", requested_by=people["ds"])
    services.annotation_submit(item=other, user=labeler2, label_class=defect)
    assert ItemLabel.objects.get(item=other).label_class == defect
    services.annotation_undo(item=other, user=labeler2)
    assert ItemLabel.objects.get(item=other).label_class == good


def test_left_is_right_straight_after_an_import_that_brought_labels(project, people, classes, items, api):
    """Before any labeler asked for an item (no queue tasks yet), labeled imports are not "left"."""
    from apps.labeling.models import LabelTask

    good, defect = classes
    its = items(6)
    services.item_labels_add(labels=[(i, good) for i in its[:4]], source="import")
    assert not LabelTask.objects.filter(project=project).exists()
    progress = api(people["labeler"]).get(f"/api/v1/projects/{project.slug}/labeling/progress/").json()
    assert (progress["left"], progress["labeled"], progress["total"]) == (2, 4, 6)
