"""REST API: resumable uploads, imports, items (seek paging), versions; roles on every endpoint."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.datasets.models import ImportJob, Item, Upload
from apps.datasets.services import import_job_run
from apps.labeling.services import item_label_set, label_class_get_or_create
from tests.factories import make_item, png_bytes

from .conftest import make_zip


def url(name, project, *args):
    return reverse(name, args=[project.slug, *args])


def run_pending_jobs():
    for job in ImportJob.objects.filter(status="queued"):
        import_job_run(job_id=job.pk, inline=True)


def test_resumable_upload_survives_a_dropped_connection(project, people, api, django_capture_on_commit_callbacks):
    data = png_bytes(size=(120, 90), mode="RGB", seed=11)
    client = api(people["ds"])
    r = client.post(url("api-uploads", project), {"filename": "photos/good/a.png", "size": len(data)}, format="json")
    assert r.status_code == 201 and r.data["offset"] == 0
    up = url("api-upload", project, r.data["id"])
    first, rest = data[:1000], data[1000:]
    r = client.put(up, first, content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0")
    assert r.status_code == 200 and r.data["offset"] == 1000
    # The connection drops after the server stored chunk 1; the client resends it: refused with the offset.
    r = client.put(up, first, content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0")
    assert r.status_code == 409 and r.data["offset"] == 1000
    # It asks how much the server has and continues from there.
    assert client.get(up).data["offset"] == 1000
    r = client.put(up, rest, content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="1000")
    assert r.status_code == 200 and r.data["complete"] is True
    with django_capture_on_commit_callbacks(execute=False):
        r = client.post(
            url("api-imports", project), {"uploads": [r.data["id"]], "labels_from_folders": True}, format="json"
        )
    assert r.status_code == 201, r.data
    run_pending_jobs()
    item = Item.objects.get(project=project)
    assert item.bytes == len(data) and item.original_name == "photos/good/a.png"
    assert item.current_label.label_class.name == "good"
    detail = client.get(url("api-import", project, r.data["id"])).data
    assert detail["status"] == "done" and detail["files"][0]["result"] == "accepted"
    # an upload is imported once
    again = client.post(url("api-imports", project), {"uploads": [str(Upload.objects.get().pk)]}, format="json")
    assert again.status_code == 400 and "already imported" in str(again.data)


def test_upload_checks_its_input(project, people, api, settings):
    client = api(people["ds"])
    r = client.post(url("api-uploads", project), {"filename": "../../etc/x.png", "size": 10}, format="json")
    assert r.status_code == 400 and "escapes" in str(r.data["filename"])
    settings.DATASET_MAX_FILE_BYTES = 100
    r = client.post(url("api-uploads", project), {"filename": "big.png", "size": 101}, format="json")
    assert r.status_code == 400 and "limit" in str(r.data["size"])
    r = client.post(url("api-uploads", project), {"filename": "a.png", "size": 4}, format="json")
    up = url("api-upload", project, r.data["id"])
    r = client.put(up, b"12345", content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0")
    assert r.status_code == 400 and "past the declared size" in str(r.data)
    r = client.put(up, b"12", content_type="application/octet-stream")
    assert r.status_code == 400 and "Upload-Offset" in str(r.data)
    r = client.post(url("api-imports", project), {"uploads": [r"00000000-0000-0000-0000-000000000000"]}, format="json")
    assert r.status_code == 400
    incomplete = Upload.objects.get()
    r = client.post(url("api-imports", project), {"uploads": [str(incomplete.pk)]}, format="json")
    assert r.status_code == 400 and "only 0 of 4 bytes" in str(r.data)


def test_multipart_import_with_a_zip_and_a_bad_file(project, people, api, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    z = make_zip([("good/a.png", png_bytes(seed=1)), ("../evil.png", png_bytes(seed=2))])
    with django_capture_on_commit_callbacks(execute=False):
        r = api(people["ds"]).post(
            url("api-imports", project),
            {
                "files": [SimpleUploadedFile("set.zip", z), SimpleUploadedFile("bad.png", b"not a png")],
                "labels_from_folders": "true",
            },
            format="multipart",
        )
    assert r.status_code == 201, r.data
    run_pending_jobs()
    d = api(people["labeler"]).get(url("api-import", project, r.data["id"]) + "?result=rejected").data
    assert {f["name"] for f in d["files"]} == {"../evil.png", "bad.png"}
    assert d["accepted"] == 1 and d["rejected"] == 2


def test_items_seek_pagination_without_count_or_offset(project, people, api):
    good = label_class_get_or_create(project=project, name="good")
    items = [make_item(project, png_bytes(size=(4, 4), seed=i)) for i in range(130)]
    for it in items[:50]:
        item_label_set(item=it, label_class=good)
    client, seen, after = api(people["labeler"]), [], None
    with CaptureQueriesContext(connection) as q:
        while True:
            r = client.get(url("api-items", project), {"after": after} if after else {})
            seen += [row["id"] for row in r.data["results"]]
            after = r.data["next_after"]
            if not after:
                break
    assert seen == sorted((i.pk for i in items), reverse=True)
    sql = " ".join(x["sql"].upper() for x in q.captured_queries if "DATASETS_ITEM" in x["sql"].upper())
    assert "OFFSET" not in sql and "COUNT(" not in sql
    labeled = client.get(url("api-items", project), {"label": "good"}).data["results"]
    assert len(labeled) == 50 and all(r["label"] == "good" for r in labeled)
    assert len(client.get(url("api-items", project), {"status": "unlabeled"}).data["results"]) == 60


def test_versions_api_create_list_diff(project, people, api):
    good = label_class_get_or_create(project=project, name="good")
    a, b = make_item(project), make_item(project)
    item_label_set(item=a, label_class=good)
    ds = api(people["ds"])
    r = ds.post(
        url("api-versions", project), {"seed": 1, "fractions": {"train": 1, "val": 0, "test": 0}}, format="json"
    )
    assert r.status_code == 201 and r.data["number"] == 1 and r.data["runs"] == []
    item_label_set(item=b, label_class=good)
    ds.post(url("api-versions", project), {}, format="json")
    d = api(people["labeler"]).get(url("api-version-diff", project), {"a": 1, "b": 2}).data
    assert [x["item"] for x in d["added"]] == [b.pk] and d["removed"] == [] and d["relabeled"] == []
    assert api(people["labeler"]).get(url("api-version", project, 2)).data["item_count"] == 2
    bad = ds.post(url("api-versions", project), {"fractions": {"train": 2, "val": 0, "test": 0}}, format="json")
    assert bad.status_code == 400 and "fractions" in bad.data
    versions = api(people["labeler"]).get(url("api-items", project), {"version": 1, "split": "train"}).data
    assert [r["id"] for r in versions["results"]] == [a.pk]


@pytest.fixture
def endpoints(project):
    """(method, url, body) of every API endpoint, each a write or a read."""
    item = make_item(project)
    good = label_class_get_or_create(project=project, name="good")
    item_label_set(item=item, label_class=good)
    from apps.datasets.services import dataset_version_create, upload_create

    dataset_version_create(project=project, user=None)
    dataset_version_create(project=project, user=None)
    upload = upload_create(project=project, user=None, filename="x.png", size=3)
    job = ImportJob.objects.create(project=project)
    reads = [
        url("api-imports", project),
        url("api-import", project, job.pk),
        url("api-items", project),
        url("api-versions", project),
        url("api-version", project, 1),
        url("api-version-diff", project) + "?a=1&b=2",
    ]
    writes = [
        ("post", url("api-uploads", project), {"filename": "a.png", "size": 3}),
        ("put", url("api-upload", project, upload.pk), b"abc"),
        ("post", url("api-imports", project), {"uploads": []}),
        ("post", url("api-versions", project), {"seed": 2}),
    ]
    return reads, writes, url("api-upload", project, upload.pk)


def _send(client, method, u, body):
    if method == "put":
        return client.put(u, body, content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0")
    return getattr(client, method)(u, body, format="json")


def test_roles_on_every_api_endpoint(people, api, endpoints):
    reads, writes, upload_url = endpoints
    for u in reads:
        assert api(people["labeler"]).get(u).status_code == 200, u
        assert api(people["outsider"]).get(u).status_code == 404, u
        assert api().get(u).status_code in (401, 403), u
    # the upload's own offset is for the uploader's role only
    assert api(people["ds"]).get(upload_url).status_code == 200
    assert api(people["labeler"]).get(upload_url).status_code == 403
    for method, u, body in writes:
        assert _send(api(people["outsider"]), method, u, body).status_code == 404, u
        assert _send(api(people["labeler"]), method, u, body).status_code == 403, u
        assert _send(api(people["manager"]), method, u, body).status_code == 403, u
        assert _send(api(people["ds"]), method, u, body).status_code in (200, 201, 400), u
