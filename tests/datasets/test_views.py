"""HTML pages: grid with filters and seek paging, image serving without metadata, roles."""

import io

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image, PngImagePlugin

from apps.core.stages import project_stages
from apps.datasets.models import DatasetVersion, ImportJob
from apps.datasets.services import dataset_version_create
from apps.labeling.services import item_label_set, label_class_get_or_create
from tests.factories import field_errors, make_item, png_bytes


def client_for(user):
    c = Client()
    c.force_login(user)
    return c


def jpeg_with_exif():
    im = Image.new("RGB", (40, 30), (200, 10, 10))
    exif = Image.Exif()
    exif[0x010F] = "SecretCameraMaker"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def png_with_text():
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "SecretAuthorName")
    buf = io.BytesIO()
    Image.new("L", (20, 20), 77).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


@pytest.mark.parametrize("make,secret", [(jpeg_with_exif, b"SecretCameraMaker"), (png_with_text, b"SecretAuthorName")])
def test_served_images_carry_no_metadata(project, people, make, secret):
    data = make()
    assert secret in data
    item = make_item(project, data)
    from apps.core.images import image_inspect
    from apps.core.storage import blob_put

    inspected = image_inspect(data)
    item.thumbnail = blob_put(inspected.thumbnail, ext=inspected.thumbnail_ext, content_type="image/jpeg")
    item.save()
    c = client_for(people["labeler"])
    for name in ("datasets-item-image", "datasets-item-thumb"):
        r = c.get(reverse(name, args=[project.slug, item.pk]))
        assert r.status_code == 200 and secret not in r.content
        with Image.open(io.BytesIO(r.content)) as served:
            assert not served.getexif() and "Author" not in served.info
    with Image.open(io.BytesIO(c.get(reverse("datasets-item-image", args=[project.slug, item.pk])).content)) as full:
        assert full.size == (item.width, item.height)


def test_grid_filters_and_seek_paging(project, people):
    good = label_class_get_or_create(project=project, name="good")
    defect = label_class_get_or_create(project=project, name="defect")
    items = [make_item(project, png_bytes(size=(4, 4), seed=i), name=f"img{i}.png") for i in range(70)]
    for it in items[:30]:
        item_label_set(item=it, label_class=good)
    item_label_set(item=items[30], label_class=defect)
    c = client_for(people["labeler"])
    base = reverse("datasets-data", args=[project.slug])
    r = c.get(base)
    page1 = r.context["page"]
    assert r.status_code == 200 and len(page1.rows) == 60 and page1.has_more
    r2 = c.get(base, {"after": page1.next_cursor})
    assert len(r2.context["page"].rows) == 10 and not r2.context["page"].has_more
    assert {row["item"].pk for row in page1.rows + r2.context["page"].rows} == {i.pk for i in items}
    r = c.get(base, {"label": "defect"})
    assert [row["item"].pk for row in r.context["page"].rows] == [items[30].pk]
    assert b"img30.png" in r.content
    assert len(c.get(base, {"status": "unlabeled"}).context["page"].rows) == 39
    v = dataset_version_create(project=project, user=people["ds"], fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    r = c.get(base, {"version": v.number, "split": "val"})
    assert r.context["page"].rows and all(row["split"] == "val" for row in r.context["page"].rows)
    assert c.get(base, {"version": 99}).status_code == 404


def test_version_pages_and_stage(project, people):
    good = label_class_get_or_create(project=project, name="good")
    a = make_item(project)
    assert project_stages(project)[1]["state"] == "in_progress"
    item_label_set(item=a, label_class=good)
    c = client_for(people["ds"])
    r = c.post(
        reverse("datasets-versions", args=[project.slug]),
        {"name": "first", "seed": "4", "train": "0.8", "val": "0.1", "test": "0.1"},
    )
    v = DatasetVersion.objects.get()
    assert r.status_code == 302 and (v.seed, v.name, v.fractions["train"]) == (4, "first", 0.8)
    r = c.post(
        reverse("datasets-versions", args=[project.slug]), {"seed": "1", "train": "0.9", "val": "0.3", "test": "0"}
    )
    assert r.status_code == 400 and "sum to 1" in field_errors(r.content.decode())[0]
    assert 'value="0.9"' in r.content.decode()  # what was typed comes back
    r = c.post(
        reverse("datasets-versions", args=[project.slug]), {"seed": "x", "train": "most", "val": "0", "test": "0"}
    )
    html = r.content.decode()
    assert field_errors(html, "seed") == ["The seed must be a whole number."]
    assert field_errors(html, "train") == ["Fractions must be numbers like 0.7."]
    assert DatasetVersion.objects.count() == 1
    r = c.get(reverse("datasets-version", args=[project.slug, 1]))
    assert b"No training runs yet" in r.content and v.content_hash.encode() in r.content
    stage = project_stages(project)[1]
    assert stage["state"] == "done" and stage["url"] == reverse("datasets-data", args=[project.slug])


@pytest.fixture
def pages(project):
    item = make_item(project)
    label_class_get_or_create(project=project, name="good")
    item_label_set(item=item, label_class=label_class_get_or_create(project=project, name="good"))
    dataset_version_create(project=project, user=None)
    dataset_version_create(project=project, user=None)
    job = ImportJob.objects.create(project=project)
    s = project.slug
    reads = [
        reverse("datasets-data", args=[s]),
        reverse("datasets-import", args=[s, job.pk]),
        reverse("datasets-item", args=[s, item.pk]),
        reverse("datasets-item-image", args=[s, item.pk]),
        reverse("datasets-versions", args=[s]),
        reverse("datasets-version", args=[s, 1]),
        reverse("datasets-version-diff", args=[s]) + "?a=1&b=2",
    ]
    return reads, reverse("datasets-upload", args=[s]), reverse("datasets-versions", args=[s])


def test_roles_on_every_page(people, pages):
    reads, upload, versions = pages
    for u in reads:
        assert client_for(people["labeler"]).get(u).status_code == 200, u
        assert client_for(people["outsider"]).get(u).status_code == 404, u
        assert Client().get(u).status_code == 302, u  # to the login page
    assert client_for(people["ds"]).get(upload).status_code == 200
    assert client_for(people["labeler"]).get(upload).status_code == 403
    assert client_for(people["outsider"]).get(upload).status_code == 404
    form = {"seed": "0", "train": "0.7", "val": "0.15", "test": "0.15"}
    assert client_for(people["labeler"]).post(versions, form).status_code == 403
    assert client_for(people["manager"]).post(versions, form).status_code == 403
    assert client_for(people["outsider"]).post(versions, form).status_code == 404
    assert client_for(people["ds"]).post(versions, form).status_code == 302


def test_items_of_another_project_are_not_served(project, people):
    from tests.factories import ProjectFactory

    other = make_item(ProjectFactory())
    c = client_for(people["labeler"])
    for name in ("datasets-item", "datasets-item-image", "datasets-item-thumb"):
        assert c.get(reverse(name, args=[project.slug, other.pk])).status_code == 404
