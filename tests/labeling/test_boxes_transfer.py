"""Boxes leave the portal (COCO JSON, YOLO text files, a CSV of boxes; of a version or of the current
labels) and come in (COCO JSON, a verdict per box, nothing stored from a refused box)."""

import io
import json
import zipfile

import pytest
from django.test import Client

from apps.datasets.services import dataset_version_create
from apps.labeling.models import ItemLabel
from apps.labeling.services import item_label_set, label_class_get_or_create
from tests.factories import make_item

pytestmark = pytest.mark.django_db

TIP = {"x": 410.0, "y": 300.0, "w": 120.0, "h": 90.0, "class": "defect"}
THREAD = {"x": 600.0, "y": 520.0, "w": 60.0, "h": 64.0}  # no class of its own: takes the label's


@pytest.fixture
def boxed(screws, project, people):
    """Two real defect photographs with boxes drawn in the test, one good one without."""
    root, rows = screws
    photos = [(root / r["path"]).read_bytes() for r in rows if r["label"] != "good"][:2]
    good = label_class_get_or_create(project=project, name="good")
    defect = label_class_get_or_create(project=project, name="defect")
    a, b = (make_item(project, data, name=f"screws/defect/{i}.png") for i, data in enumerate(photos))
    plain = make_item(project, name="screws/good/plain.png")
    item_label_set(item=a, label_class=defect, user=people["labeler"], regions=[TIP, THREAD])
    item_label_set(item=plain, label_class=good, user=people["labeler"])
    return {"a": a, "b": b, "plain": plain, "good": good, "defect": defect}


def _get(people, who, url):
    c = Client()
    c.force_login(people[who])
    return c.get(url)


def test_a_version_exports_its_boxes_as_coco_yolo_and_csv(boxed, project, people):
    v = dataset_version_create(project=project, user=people["ds"])
    a = boxed["a"]
    base = f"/api/v1/projects/{project.slug}/labeling/versions/{v.number}/export."
    coco = json.loads(_get(people, "labeler", base + "coco.json").content)
    assert {c["name"] for c in coco["categories"]} == {"defect", "good"}
    image = next(i for i in coco["images"] if i["sha256"] == a.sha256)
    assert (image["width"], image["height"], image["label"]) == (a.width, a.height, "defect")
    boxes = [x for x in coco["annotations"] if x["image_id"] == image["id"]]
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    assert [(x["bbox"], cats[x["category_id"]]) for x in boxes] == [
        ([410.0, 300.0, 120.0, 90.0], "defect"),
        ([600.0, 520.0, 60.0, 64.0], "defect"),
    ]
    assert len(coco["annotations"]) == 2 and coco["info"]["content_hash"] == v.content_hash

    r = _get(people, "reviewer", base + "yolo.zip")
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    names = zf.read("classes.txt").decode().split()
    assert names == ["defect", "good"] and '0: "defect"' in zf.read("data.yaml").decode()
    [label_file] = [n for n in zf.namelist() if n.endswith("/0.txt") and "labels/" in n]
    cx, cy = (410 + 60) / a.width, (300 + 45) / a.height
    first = zf.read(label_file).decode().splitlines()[0].split()
    assert (
        first[0] == "0"
        and float(first[1]) == pytest.approx(cx, abs=1e-6)
        and float(first[2]) == pytest.approx(cy, abs=1e-6)
    )
    assert sum(1 for n in zf.namelist() if n.startswith("labels/")) == 2  # the good one: an empty file

    rows = _get(people, "pm", base + "boxes.csv").content.decode().splitlines()
    assert rows[0] == "file_name,sha256,split,label,box_class,x,y,w,h,width,height"
    assert len(rows) == 1 + 2 + 1 and any(r.startswith("0.png,") and ",defect,defect,410.0,300.0," in r for r in rows)
    assert _get(people, "outsider", base + "coco.json").status_code == 404
    assert "coco.json" in _get(people, "pm", base + "tiff").json()["detail"]


def test_the_current_labels_export_with_their_boxes(boxed, project, people):
    item_label_set(item=boxed["b"], label_class=boxed["defect"], user=people["labeler"], regions=[TIP])
    url = f"/api/v1/projects/{project.slug}/labeling/export/current.coco.json"
    coco = json.loads(_get(people, "labeler", url).content)
    assert (
        len(coco["images"]) == 3
        and len(coco["annotations"]) == 3
        and coco["info"]["description"].endswith("current labels")
    )
    page = _get(people, "labeler", f"/p/{project.slug}/labeling/export/").content.decode()
    assert f"/p/{project.slug}/labeling/export/current.yolo.zip" in page
    r = _get(people, "labeler", f"/p/{project.slug}/labeling/export/current.boxes.csv")
    assert r.status_code == 200 and r["Content-Disposition"].endswith('-current.boxes.csv"')
    assert _get(people, "outsider", url).status_code == 404
    assert _get(people, "labeler", f"/p/{project.slug}/labeling/export/current.csv").status_code == 404


def _coco_file(images, annotations, categories):
    f = io.BytesIO(json.dumps({"images": images, "annotations": annotations, "categories": categories}).encode())
    f.name = "boxes.json"
    return f


def test_coco_import_checks_every_box_and_stores_only_the_good_ones(boxed, project, people, api):
    a, b = boxed["a"], boxed["b"]
    images = [
        {"id": 1, "file_name": "0.png", "width": a.width, "height": a.height},  # by file name
        {"id": 2, "file_name": "renamed.png", "sha256": b.sha256},  # by sha256
        {"id": 3, "file_name": "nowhere.png"},
    ]
    cats = [{"id": 1, "name": "defect"}, {"id": 2, "name": "scratch"}]
    anns = [
        {"id": 10, "image_id": 1, "category_id": 1, "bbox": [100, 100, 50, 40]},
        {"id": 11, "image_id": 1, "category_id": 2, "bbox": [10, 10, 5, 5]},  # unknown class
        {"id": 12, "image_id": 1, "category_id": 1, "bbox": [a.width - 10, 10, 50, 50]},  # outside the image
        {"id": 13, "image_id": 1, "category_id": 1, "bbox": [20, 20, 0, 10]},  # no size
        {"id": 14, "image_id": 1, "category_id": 1, "bbox": [float("nan"), 20, 10, 10]},  # JSON's NaN
        {"id": 20, "image_id": 2, "category_id": 1, "bbox": [200, 220, 30, 30]},
        {"id": 30, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5]},  # no such item
    ]
    url = f"/api/v1/projects/{project.slug}/labeling/import/"
    body = lambda: {"file": _coco_file(images, anns, cats), "kind": "coco"}  # noqa: E731
    assert api(people["labeler"]).post(url, body(), format="multipart").status_code == 403
    assert api(people["outsider"]).post(url, body(), format="multipart").status_code == 404
    r = api(people["pm"]).post(url, body(), format="multipart")
    report = r.json()
    assert r.status_code == 200 and (report["applied"], report["rejected"]) == (2, 5), report["rows"]
    verdicts = {row["where"]: (row["result"], row["detail"]) for row in report["rows"]}
    assert verdicts["0.png box 10"][0] == "applied"
    assert "unknown class 'scratch'" in verdicts["0.png box 11"][1]
    assert "inside the" in verdicts["0.png box 12"][1] and verdicts["0.png box 13"][0] == "rejected"
    assert "finite" in verdicts["0.png box 14"][1]
    assert "no item named nowhere.png" in verdicts["nowhere.png box 30"][1]
    # Only the good boxes are stored; a's label stays, b (unlabeled) takes its boxes' class.
    assert ItemLabel.objects.get(item=a).regions == [{"x": 100.0, "y": 100.0, "w": 50.0, "h": 40.0, "class": "defect"}]
    lab = ItemLabel.objects.get(item=b)
    assert lab.label_class == boxed["defect"] and lab.regions[0]["x"] == 200.0
    # The same file again changes nothing; a file that is not COCO is refused whole.
    again = api(people["pm"]).post(url, body(), format="multipart").json()
    assert again["applied"] == 0 and again["unchanged"] == 2
    bad = io.BytesIO(b'{"images": 3}')
    bad.name = "x.json"
    r = api(people["ds"]).post(url, {"file": bad, "kind": "coco"}, format="multipart")
    assert r.status_code == 400 and "not COCO JSON" in json.dumps(r.json())


def test_coco_import_on_the_page_round_trips_the_export(boxed, project, people):
    v = dataset_version_create(project=project, user=people["ds"])
    c = Client()
    c.force_login(people["pm"])
    exported = c.get(f"/p/{project.slug}/labeling/export/v{v.number}.coco.json").content
    ItemLabel.objects.filter(item=boxed["a"]).update(regions=[])
    f = io.BytesIO(exported)
    f.name = "export.json"
    r = c.post(f"/p/{project.slug}/labeling/import/", {"kind": "coco", "file": f})
    html = r.content.decode()
    assert r.status_code == 200 and "<b>2</b> applied" in html
    assert ItemLabel.objects.get(item=boxed["a"]).regions == [TIP, dict(THREAD, **{"class": "defect"})]


def test_two_labelers_boxes_are_compared_by_iou_and_the_reviewer_sees_both(boxed, project, people, labeler2):
    from apps.labeling import services
    from apps.labeling.agreement import box_pair
    from apps.labeling.models import LabelingSettings

    LabelingSettings.objects.update_or_create(project=project, defaults={"overlap": 2, "overlap_share": 1.0})
    b = boxed["b"]
    mine = {"x": 400.0, "y": 300.0, "w": 100.0, "h": 100.0, "class": "defect"}
    theirs = {"x": 420.0, "y": 300.0, "w": 100.0, "h": 100.0, "class": "defect"}  # IoU 80/120
    services.annotation_submit(item=b, user=people["labeler"], label_class=boxed["defect"], regions=[mine])
    services.annotation_submit(item=b, user=labeler2, label_class=boxed["good"], regions=[theirs, TIP])
    pair = box_pair([mine], [theirs, TIP])
    assert pair == {"matched": 1, "mean_iou": pytest.approx(0.667, abs=1e-3), "f1": pytest.approx(2 / 3, abs=1e-3)}

    c = Client()
    c.force_login(people["pm"])
    agreement = c.get(f"/api/v1/projects/{project.slug}/labeling/agreement/").json()["boxes"]
    assert agreement["items"] == 1 and agreement["pairs"][0]["mean_iou"] == pytest.approx(0.667, abs=1e-3)
    assert 'id="box-agreement"' in c.get(f"/p/{project.slug}/labeling/").content.decode()

    c.force_login(people["reviewer"])
    html = c.get(f"/p/{project.slug}/labeling/review/").content.decode()
    card = html.split("data-boxes")[1]
    assert card.count('<rect class="ann-0"') == 1 and card.count('<rect class="ann-1"') == 2  # both labelers' boxes
    assert "mean IoU 0.67" in card and "F1 at IoU ≥ 0.5 0.67" in card
    assert c.get(f"/p/{project.slug}/labeling/review/").status_code == 200
    assert Client().get(f"/p/{project.slug}/labeling/review/").status_code == 302
