"""Dataset versions: frozen labels, stratified seeded splits, content hash, diff, runs."""

import pytest
from django.core.exceptions import ValidationError

from apps.core.models import AuditEvent
from apps.datasets.models import DatasetVersion, VersionItem
from apps.datasets.selectors import version_diff, version_entries, version_runs
from apps.datasets.services import dataset_version_create, split_assign
from apps.labeling.services import item_label_set, label_class_get_or_create
from tests.factories import make_item, png_bytes


@pytest.fixture
def labeled(project, people):
    good = label_class_get_or_create(project=project, name="good")
    defect = label_class_get_or_create(project=project, name="defect")
    items = []
    for i in range(60):
        item = make_item(project, png_bytes(size=(8, 8), seed=1000 + i))
        item_label_set(item=item, label_class=good if i < 40 else defect, user=people["ds"])
        items.append(item)
    unlabeled = make_item(project, png_bytes(size=(8, 8), seed=5))
    return items, unlabeled, good, defect


def test_version_freezes_current_labels_stratified(project, people, labeled):
    items, unlabeled, good, defect = labeled
    v = dataset_version_create(project=project, user=people["ds"], name="first", seed=3)
    assert v.status == "ready" and v.number == 1 and v.item_count == 60 and v.classes == ["defect", "good"]
    assert v.counts["train"] == {"good": 28, "defect": 14}
    assert v.counts["val"] == {"good": 6, "defect": 3} and v.counts["test"] == {"good": 6, "defect": 3}
    assert v.counts["unlabeled"] == 1
    assert not VersionItem.objects.filter(version=v, item=unlabeled).exists()
    assert v.fractions == {"train": 0.7, "val": 0.15, "test": 0.15} and v.seed == 3
    assert AuditEvent.objects.filter(action="dataset_version.created", object_id=str(v.pk)).exists()
    rows = version_entries(v, split="val")
    assert len(rows) == 9 and all(s == "val" for _, _, s in rows) and rows[0][0].blob.path


def test_same_inputs_same_split_and_hash_other_seed_differs(project, people, labeled):
    a = dataset_version_create(project=project, user=people["ds"], seed=7)
    b = dataset_version_create(project=project, user=people["ds"], seed=7)
    c = dataset_version_create(project=project, user=people["ds"], seed=8)
    split = lambda v: dict(VersionItem.objects.filter(version=v).values_list("item_id", "split"))  # noqa: E731
    assert split(a) == split(b) and a.content_hash == b.content_hash and (a.number, b.number) == (1, 2)
    assert split(a) != split(c) and a.content_hash != c.content_hash


def test_split_does_not_depend_on_row_order():
    rows = [(f"{i:064x}", "good" if i % 3 else "defect") for i in range(50)]
    fr = {"train": 0.6, "val": 0.2, "test": 0.2}
    assert split_assign(rows, seed=1, fractions=fr) == split_assign(list(reversed(rows)), seed=1, fractions=fr)


def test_ready_version_is_unchanged_by_later_relabels_and_diff_shows_them(project, people, labeled):
    items, unlabeled, good, defect = labeled
    v1 = dataset_version_create(project=project, user=people["ds"])
    before = list(VersionItem.objects.filter(version=v1).values_list("item_id", "label", "split"))
    item_label_set(item=items[0], label_class=defect, user=people["ds"])  # relabel
    item_label_set(item=unlabeled, label_class=good, user=people["ds"])  # newly labeled
    items[1].current_label.delete()  # no label any more: leaves the next version
    v2 = dataset_version_create(project=project, user=people["ds"])
    assert list(VersionItem.objects.filter(version=v1).values_list("item_id", "label", "split")) == before
    assert v1.content_hash != v2.content_hash
    d = version_diff(v1, v2)
    assert [r["item"] for r in d["added"]] == [unlabeled.pk]
    assert [r["item"] for r in d["removed"]] == [items[1].pk]
    assert d["relabeled"] == [{"item": items[0].pk, "name": items[0].original_name, "from": "good", "to": "defect"}]


@pytest.mark.parametrize(
    "fractions,words",
    [
        ({"train": 0.5, "val": 0.1, "test": 0.1}, "sum to 1"),
        ({"train": 0.7, "val": 0.3}, "exactly train, val and test"),
        ({"train": "x", "val": 0.5, "test": 0.5}, "numbers"),
        ({"train": 0, "val": 0.5, "test": 0.5}, "above 0"),
    ],
)
def test_bad_fractions_leave_no_version(project, people, labeled, fractions, words):
    with pytest.raises(ValidationError) as exc:
        dataset_version_create(project=project, user=people["ds"], fractions=fractions)
    assert words in str(exc.value)
    assert not DatasetVersion.objects.exists()


def test_no_labels_no_version(project, people):
    make_item(project)
    with pytest.raises(ValidationError, match="No labeled items"):
        dataset_version_create(project=project, user=people["ds"])


def test_runs_list_holds_only_this_versions_runs_newest_first(project, people, labeled):
    from apps.training.services import training_run_create
    from tests.factories import mark_profiled

    v = dataset_version_create(project=project, user=people["ds"])
    assert version_runs(v) == []
    mark_profiled(v)
    first = training_run_create(project=project, user=people["ds"], dataset_version=v, config={"epochs": 1})
    second = training_run_create(project=project, user=people["ds"], dataset_version=v, config={"epochs": 1})
    assert version_runs(v) == [second, first]


def test_a_new_version_is_profiled_at_once(project, people):
    from apps.datasets.services import dataset_version_create
    from apps.profiling.models import ProfileRun
    from tests.factories import label_classes, make_item, set_label

    good, defect = label_classes(project)
    for i in range(6):
        set_label(make_item(project), good if i % 2 else defect)
    version = dataset_version_create(project=project, user=people["ds"], seed=1)
    run = ProfileRun.objects.get(version=version)
    assert run.status in ("queued", "running", "succeeded")


def test_freeze_keeps_the_split_the_upload_folders_give(project, people, api):
    from apps.datasets.ingest import label_from_path, split_from_path
    from apps.datasets.models import VersionItem
    from tests.factories import label_classes, make_item, png_bytes, set_label

    assert [
        split_from_path(p) for p in ("train/good/a.png", "set/Validation/defect/b.png", "good/test/c.png", "good/d.png")
    ] == ["train", "val", "test", ""]
    # Labels from folders ignore the split level, wherever it sits.
    assert [label_from_path(p) for p in ("train/good/a.png", "good/train/a.png", "test/a.png")] == ["good", "good", ""]
    good, defect = label_classes(project)
    layout = {"train": 6, "val": 2, "test": 2}
    seeds = iter(range(100, 200))  # one distinct image each (a hash of the names could collide)
    for split, n in layout.items():
        for i in range(n):
            for cls in (good, defect):
                item = make_item(
                    project,
                    png_bytes(seed=next(seeds)),
                    name=f"screws/{split}/{cls.name}/{i}.png",
                )
                set_label(item, cls)
    loose = make_item(project, png_bytes(seed=9999), name="extra/good/x.png")
    set_label(loose, good)
    r = api(people["ds"]).post(
        f"/api/v1/projects/{project.slug}/data/versions/", {"split_from": "folders"}, format="json"
    )
    assert r.status_code == 201, r.content
    assert r.json()["split_from"] == "folders"
    v = project.dataset_versions.get(number=r.json()["number"])
    for entry in VersionItem.objects.filter(version=v).select_related("item"):
        expected = split_from_path(entry.item.original_name)
        assert entry.split == (expected or entry.split), entry.item.original_name  # the loose one: seeded
    assert v.counts["train"] == {"good": 7, "defect": 6} or v.counts["train"] == {"good": 6, "defect": 6}
    assert sum(sum(c.values()) for k, c in v.counts.items() if k != "unlabeled") == 21
    # The seeded default is unchanged, and a project with no split folders is told so.
    r = api(people["ds"]).post(f"/api/v1/projects/{project.slug}/data/versions/", {}, format="json")
    assert r.json()["split_from"] == "seeded"
    r = api(people["ds"]).post(
        f"/api/v1/projects/{project.slug}/data/versions/", {"split_from": "sideways"}, format="json"
    )
    assert r.status_code == 400 and "split_from" in r.json()
