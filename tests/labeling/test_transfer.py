import csv
import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError

from apps.core.storage import blob_read
from apps.labeling import services, transfer
from apps.labeling.models import ItemLabel, LabelChange
from tests.factories import make_version, png_bytes


def _csv(text, name="labels.csv"):
    f = io.BytesIO(text.encode())
    f.name = name
    return f


def test_csv_import_matches_by_sha256_or_name_and_reports_bad_rows(project, people, classes, items):
    its = items(3)
    text = (
        f"file_name,sha256,class\n"
        f",{its[0].sha256},defect\n"
        f"img001.png,,good\n"
        f"missing.png,,good\n"
        f"img002.png,,\n"
        f"img002.png,,scratch\n"
    )
    report = transfer.labels_import_csv(project=project, user=people["pm"], fileobj=_csv(text))
    assert (report.applied, report.rejected) == (3, 2)
    assert ItemLabel.objects.get(item=its[0]).label_class.name == "defect"
    assert ItemLabel.objects.get(item=its[1]).label_class.name == "good"
    assert ItemLabel.objects.get(item=its[2]).label_class.name == "scratch"  # a new class is made
    bad = [r for r in report.rows if r["result"] == "rejected"]
    assert bad[0]["where"] == "labels.csv line 4" and "no item named missing.png" in bad[0]["detail"]
    assert "class is empty" in bad[1]["detail"]
    assert LabelChange.objects.filter(source="import").count() == 3
    again = transfer.labels_import_csv(project=project, user=people["pm"], fileobj=_csv(text))
    assert (again.applied, again.unchanged) == (0, 3)


def test_csv_without_the_needed_columns_changes_nothing(project, people, classes, items):
    items(1)
    with pytest.raises(ValidationError) as exc:
        transfer.labels_import_csv(project=project, user=people["pm"], fileobj=_csv("foo,bar\n1,2\n"), filename="x.csv")
    assert "x.csv" in str(exc.value) and "class" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        transfer.labels_import_csv(
            project=project, user=people["pm"], fileobj=io.BytesIO(b"\xff\xfe\x00bad"), filename="bad.csv"
        )
    assert "not UTF-8" in str(exc.value)
    assert not ItemLabel.objects.exists()


def test_folder_zip_import_matches_images_by_content(project, people, classes, items):
    its = items(2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("export/defect/a.png", blob_read(its[0].blob))
        zf.writestr("export/good/b.png", blob_read(its[1].blob))
        zf.writestr("export/good/unknown.png", png_bytes(seed=999))
        zf.writestr("export/good/notes.txt", "hi")
    buf.seek(0)
    report = transfer.labels_import_folders(project=project, user=people["ds"], fileobj=buf)
    assert (report.applied, report.rejected) == (2, 2)
    assert ItemLabel.objects.get(item=its[0]).label_class.name == "defect"
    assert ItemLabel.objects.get(item=its[1]).label_class.name == "good"
    with pytest.raises(ValidationError):
        transfer.labels_import_folders(project=project, user=people["ds"], fileobj=io.BytesIO(b"not a zip"))


def test_export_csv_json_and_imagenet_folders(project, classes, items):
    its = items(3)
    v = make_version(project, [(its[0], "train", "good"), (its[1], "train", "defect"), (its[2], "test", "good")])
    rows = list(csv.DictReader(io.StringIO(transfer.version_csv(v))))
    assert {(r["file_name"], r["sha256"], r["split"], r["label"]) for r in rows} == {
        ("img000.png", its[0].sha256, "train", "good"),
        ("img001.png", its[1].sha256, "train", "defect"),
        ("img002.png", its[2].sha256, "test", "good"),
    }
    data = json.loads(transfer.version_json(v))
    assert data["version"] == v.number and len(data["items"]) == 3 and data["classes"] == ["defect", "good"]
    with zipfile.ZipFile(transfer.version_folders_zip(v)) as zf:
        names = sorted(zf.namelist())
        assert names == ["test/good/img002.png", "train/defect/img001.png", "train/good/img000.png"]
        assert zf.read("train/defect/img001.png") == blob_read(its[1].blob)


def test_zip_export_download_over_http(project, people, classes, items, client):
    its = items(1)
    v = make_version(project, [(its[0], "train", "good")])
    client.force_login(people["labeler"])
    r = client.get(f"/p/{project.slug}/labeling/export/v{v.number}.zip")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert "attachment" in r["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content))) as zf:
        assert zf.namelist() == ["train/good/img000.png"]


def test_class_colours_read_the_right_way_round(project):
    from apps.core.colors import GREEN, WARM, class_palette
    from apps.labeling.models import LabelClass
    from apps.profiling.charts import class_colors

    # Created defect-first (a folder import sorts names): the defect class must not be the green one.
    defect = services.label_class_get_or_create(project=project, name="defect")
    good = services.label_class_get_or_create(project=project, name="good")
    scratch = services.label_class_get_or_create(project=project, name="scratch")
    assert good.color == GREEN and defect.color == WARM[0] and scratch.color == WARM[1]
    assert class_palette(["crack", "OK", "thread"]) == {"crack": WARM[0], "OK": GREEN, "thread": WARM[1]}
    # Charts of classes the schema does not know use the same rule; the schema's own colour wins.
    LabelClass.objects.filter(pk=defect.pk).update(color="#123456")
    assert class_colors(project, ["defect", "good", "normal", "bent"]) == {
        "defect": "#123456",
        "good": GREEN,
        "normal": GREEN,
        "bent": WARM[0],
    }


def test_the_schema_changes_a_class_colour(project, people):
    from apps.labeling.models import LabelClass

    good = services.label_class_get_or_create(project=project, name="good")
    services.label_schema_update(
        project=project, user=people["pm"], classes=[{"id": good.pk, "name": "good", "color": "#00aa00", "hotkey": "1"}]
    )
    assert LabelClass.objects.get(pk=good.pk).color == "#00aa00"
