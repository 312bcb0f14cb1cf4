"""Labelers' boxes are frozen into dataset versions with their labels, shown on the item's page
over the image, and compared between versions (added, moved, removed)."""

import pytest

from apps.core.boxes import changes, iou, match
from apps.datasets.models import VersionItem
from apps.datasets.services import dataset_version_create
from apps.datasets.services.versions import content_hash
from apps.labeling.services import item_label_set, label_class_get_or_create
from tests.factories import make_item

pytestmark = pytest.mark.django_db


def test_iou_match_and_changes():
    a = {"x": 0, "y": 0, "w": 10, "h": 10}
    assert iou(a, a) == 1.0 and iou(a, {"x": 20, "y": 0, "w": 5, "h": 5}) == 0.0
    assert iou(a, {"x": 5, "y": 0, "w": 10, "h": 10}) == pytest.approx(50 / 150)
    before = [a, {"x": 50, "y": 50, "w": 10, "h": 10, "class": "crack"}]
    after = [{"x": 2, "y": 0, "w": 10, "h": 10}, {"x": 80, "y": 80, "w": 5, "h": 5}]
    assert match(before, after) == [(0, 0, pytest.approx(80 / 120))]
    c = changes(before, after)
    assert [m["to"]["x"] for m in c["moved"]] == [2] and c["added"] == [after[1]] and c["removed"] == [before[1]]
    assert changes(before, before) == {"added": [], "moved": [], "removed": []}


def _defect_photos(screws, n):
    root, rows = screws
    return [(root / r["path"]).read_bytes() for r in rows if r["label"] != "good"][:n]


def test_boxes_on_real_photographs_are_frozen_shown_and_diffed(screws, project, people, client):
    good = label_class_get_or_create(project=project, name="good")
    defect = label_class_get_or_create(project=project, name="defect")
    photos = _defect_photos(screws, 2)
    a, b = (make_item(project, data, name=f"screws/defect/{i}.png") for i, data in enumerate(photos))
    plain = make_item(project, name="screws/good/0.png")
    tip = {"x": 410.0, "y": 300.0, "w": 120.0, "h": 90.0, "class": "defect"}
    thread = {"x": 600.0, "y": 520.0, "w": 60.0, "h": 60.0, "class": "defect"}
    item_label_set(item=a, label_class=defect, user=people["labeler"], regions=[tip])
    item_label_set(item=b, label_class=defect, user=people["labeler"], regions=[thread])
    item_label_set(item=plain, label_class=good, user=people["labeler"])
    v1 = dataset_version_create(project=project, user=people["ds"])
    frozen = {e.item_id: e.regions for e in VersionItem.objects.filter(version=v1)}
    assert frozen == {a.pk: [tip], b.pk: [thread], plain.pk: []}

    # The hash covers the boxes; a version without boxes hashes as it always did.
    entries = [("s1", "good", "train")]
    assert content_hash(entries, seed=0, fractions={}) == content_hash(entries, seed=0, fractions={}, regions={})
    assert content_hash(entries, seed=0, fractions={}) != content_hash(
        entries, seed=0, fractions={}, regions={"s1": [tip]}
    )

    # The labeler moves one box, removes the other and draws a new one; v2 freezes that.
    moved = dict(tip, x=430.0)
    new = {"x": 100.0, "y": 100.0, "w": 40.0, "h": 30.0, "class": "defect"}
    item_label_set(item=a, label_class=defect, user=people["labeler"], regions=[moved, new])
    item_label_set(item=b, label_class=defect, user=people["labeler"], regions=[])
    v2 = dataset_version_create(project=project, user=people["ds"])
    assert v2.content_hash != v1.content_hash

    client.force_login(people["labeler"])
    html = client.get(f"/p/{project.slug}/data/versions/diff/?a={v1.number}&b={v2.number}").content.decode()
    assert "2 with changed boxes" in html
    api = client.get(f"/api/v1/projects/{project.slug}/data/versions/diff/?a=1&b=2").json()
    rows = {r["item"]: r for r in api["boxes"]}
    assert rows[a.pk]["moved"][0]["from"] == tip and rows[a.pk]["moved"][0]["to"] == moved
    assert rows[a.pk]["added"] == [new] and rows[b.pk]["removed"] == [thread]

    # The item's page draws the boxes over the photograph: the current label's, or a version's.
    page = client.get(f"/p/{project.slug}/data/items/{a.pk}/").content.decode()
    assert f'viewBox="0 0 {a.width} {a.height}"' in page and page.count("<rect ") == 2
    page = client.get(f"/p/{project.slug}/data/items/{a.pk}/?version=1").content.decode()
    assert page.count("<rect ") == 1 and 'x="410.0"' in page and "1 box drawn: the v1's." in page
    assert client.get(f"/p/{project.slug}/data/items/{plain.pk}/").content.decode().count("<rect ") == 0
