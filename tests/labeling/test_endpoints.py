"""Every labeling endpoint, HTML and API: a member with the role, a member without it (403), an
outsider (404)."""

import pytest
from django.test import Client

from apps.labeling import services
from apps.labeling.models import Annotation
from tests.factories import make_version

LABELER, REVIEWER, SCHEMA, MEMBER = "labeler", "reviewer", "schema", "member"
# who has the role, and a member who lacks it
HOLDERS = {
    LABELER: ("labeler", "reviewer"),
    REVIEWER: ("reviewer", "labeler"),
    SCHEMA: ("pm", "labeler"),
    MEMBER: ("manager", None),
}


@pytest.fixture
def world(project, people, classes, items):
    its = items(3)
    services.annotation_submit(item=its[0], user=people["labeler"], label_class=classes[0])
    version = make_version(project, [(its[0], "train", "good"), (its[1], "test", "defect")])
    ann = Annotation.objects.get(item=its[0])
    return {"item": its[1].pk, "done": its[0].pk, "ann": ann.pk, "version": version.number, "p": project.slug}


def schema_body(project):
    return {
        "classes": [
            {"id": c.pk, "name": c.name, "color": c.color, "hotkey": c.hotkey} for c in project.label_classes.all()
        ],
        "overlap": 1,
    }


API = "/api/v1/projects/{p}/labeling/"
ENDPOINTS = [
    # (name, role, method, url, body)
    ("schema-get", MEMBER, "get", API + "schema/", None),
    ("schema-put", SCHEMA, "put", API + "schema/", "schema"),
    ("next", LABELER, "post", API + "queue/next/", {"n": 2}),
    ("item", MEMBER, "get", API + "items/{item}/", None),
    ("label", LABELER, "post", API + "items/{item}/label/", {"label_class": "good", "expected_revision": 0}),
    ("skip", LABELER, "post", API + "items/{item}/skip/", {}),
    ("undo", LABELER, "post", API + "items/{done}/undo/", {}),
    ("bulk", LABELER, "post", API + "bulk/", {"items": ["{item}"], "label_class": "defect"}),
    ("progress", MEMBER, "get", API + "progress/", None),
    ("agreement", MEMBER, "get", API + "agreement/", None),
    ("review", REVIEWER, "get", API + "review/", None),
    ("resolve", REVIEWER, "post", API + "items/{item}/resolve/", {"label_class": "good", "comment": "clear"}),
    ("accept", REVIEWER, "post", API + "annotations/{ann}/accept/", {}),
    ("reject", REVIEWER, "post", API + "annotations/{ann}/reject/", {"comment": "wrong"}),
    ("import", SCHEMA, "post", API + "import/", "csv"),
    ("export-csv", MEMBER, "get", API + "versions/{version}/export.csv", None),
    ("export-zip", MEMBER, "get", API + "versions/{version}/export.zip", None),
]
HTML = "/p/{p}/labeling/"
PAGES = [
    ("overview", MEMBER, "get", HTML, None),
    ("workspace", LABELER, "get", HTML + "work/", None),
    ("grid", LABELER, "get", HTML + "grid/", None),
    ("grid-apply", LABELER, "post", HTML + "grid/", {"items": "{item}", "label_class": "cls"}),
    ("schema", SCHEMA, "get", HTML + "schema/", None),
    ("schema-save", SCHEMA, "post", HTML + "schema/", "form-schema"),
    ("review", REVIEWER, "get", HTML + "review/", None),
    ("review-accept", REVIEWER, "post", HTML + "review/annotations/{ann}/accept/", {}),
    ("review-reject", REVIEWER, "post", HTML + "review/annotations/{ann}/reject/", {"comment": "wrong class"}),
    (
        "review-resolve",
        REVIEWER,
        "post",
        HTML + "review/items/{item}/resolve/",
        {"label_class": "cls", "comment": "ok"},
    ),
    ("import", SCHEMA, "get", HTML + "import/", None),
    ("import-post", SCHEMA, "post", HTML + "import/", "csv"),
    ("export", MEMBER, "get", HTML + "export/", None),
    ("export-file", MEMBER, "get", HTML + "export/v{version}.json", None),
    ("history", MEMBER, "get", HTML + "items/{item}/history/", None),
]


def _fill(value, w):
    if isinstance(value, str):
        return value.format(**w)
    if isinstance(value, list):
        return [_fill(v, w) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, w) for k, v in value.items()}
    return value


def _body(body, w, project, html):
    import io

    if body == "schema":
        return schema_body(project)
    if body == "csv":
        f = io.BytesIO(b"file_name,class\nimg001.png,defect\n")
        f.name = "labels.csv"
        return {"file": f, "kind": "csv"}
    if body == "form-schema":
        cs = list(project.label_classes.all())
        return {
            "id": [c.pk for c in cs],
            "name": [c.name for c in cs],
            "color": [c.color for c in cs],
            "hotkey": [c.hotkey for c in cs],
            "order": [c.order for c in cs],
            "overlap": "1",
            "overlap_pct": "0",
            "lease_minutes": "10",
        }
    body = _fill(body, w)
    if body and body.get("label_class") == "cls":
        body["label_class"] = project.label_classes.get(name="defect").pk
    return body


def _call(client, method, url, body, html):
    if method == "get":
        return client.get(url)
    if html or (isinstance(body, dict) and "file" in body):
        return getattr(client, method)(url, body) if method == "post" else client.put(url, body)
    return getattr(client, method)(url, body, format="json")


def _client(user, html, api):
    if html:
        c = Client()
        c.force_login(user)
        return c
    return api(user)


@pytest.mark.parametrize("name,role,method,url,body", ENDPOINTS + PAGES, ids=[e[0] for e in ENDPOINTS + PAGES])
def test_role_member_without_role_and_outsider(name, role, method, url, body, world, people, project, api):
    html = url.startswith("/p/")
    holder, lacking = HOLDERS[role]
    u = url.format(**world)
    ok = _call(_client(people[holder], html, api), method, u, _body(body, world, project, html), html)
    assert ok.status_code in (200, 302), (name, ok.status_code, getattr(ok, "content", b"")[:300])
    if lacking:
        no = _call(_client(people[lacking], html, api), method, u, _body(body, world, project, html), html)
        assert no.status_code == 403, (name, no.status_code)
    out = _call(_client(people["outsider"], html, api), method, u, _body(body, world, project, html), html)
    assert out.status_code == 404, (name, out.status_code)
